//! `sslvpn.v1.WatchSslVpnServerResponse`, written by hand so that a
//! message can carry parts already encoded.
//!
//! Every watcher of a gateway is told the same gateway state and the same
//! server at each change; only the phase, the time since it began and the
//! pending fields are its own. build.rs has the generated server name this
//! type instead of `pb`'s, and this type adds `shared`: fields 1 and 3 as encoded
//! once per observation, written in their place, so ten thousand watchers
//! cost one conversion and one encoding of the server, not ten thousand.
//! On the wire nothing changes (the bytes are those prost would write, in
//! field order), and a decoded message has its fields set as usual.

use bytes::{BufMut, Bytes, BytesMut};
use prost::{
    DecodeError, Message,
    encoding::{DecodeContext, WireType, int32, message, skip_field, string},
};

use crate::pb::{GatewayState, Phase, SslVpnServer};

const GATEWAY: u32 = 1;
const PHASE: u32 = 2;
const SSL_VPN_SERVER: u32 = 3;
const ERROR: u32 = 4;
const ELAPSED: u32 = 5;
const PENDING_FIELDS: u32 = 6;

/// One observed state of the watched server.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WatchSslVpnServerResponse {
    /// The gateway's state.
    pub gateway: Option<GatewayState>,
    /// Where the change stands.
    pub phase: i32,
    /// The server's configuration; always set on the terminal message.
    pub ssl_vpn_server: Option<SslVpnServer>,
    /// Why the change failed; set only when phase is PHASE_FAILED. Carries
    /// the same ErrorInfo as a failed call would.
    pub error: Option<tonic_types::pb::Status>,
    /// Time since the operation was accepted (with operation_id) or since
    /// the watch started (without).
    pub elapsed: Option<prost_types::Duration>,
    /// The proto field names of the operation's values not yet observed on
    /// the server (empty without operation_id, or once all hold).
    pub pending_fields: Vec<String>,
    /// Fields already encoded, written instead of `gateway` and
    /// `ssl_vpn_server` (a sender sets one or the other). Never set by
    /// decoding.
    pub shared: SharedParts,
}

/// Encoded fields shared among many messages.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SharedParts {
    pub gateway: Option<Bytes>,
    pub ssl_vpn_server: Option<Bytes>,
}

impl SharedParts {
    /// `gateway` as field 1 of this message, tag and length included.
    pub fn encode_gateway(gateway: &GatewayState) -> Bytes {
        encode_field(GATEWAY, gateway)
    }

    /// `server` as field 3 of this message, tag and length included.
    pub fn encode_ssl_vpn_server(server: &SslVpnServer) -> Bytes {
        encode_field(SSL_VPN_SERVER, server)
    }
}

fn encode_field(tag: u32, value: &impl Message) -> Bytes {
    let mut buf = BytesMut::with_capacity(message::encoded_len(tag, value));
    message::encode(tag, value, &mut buf);
    buf.freeze()
}

/// A field written either from its shared encoding or from its value.
fn encode_either(
    tag: u32,
    shared: Option<&Bytes>,
    value: Option<&impl Message>,
    buf: &mut impl BufMut,
) {
    match (shared, value) {
        (Some(encoded), _) => buf.put_slice(encoded),
        (None, Some(value)) => message::encode(tag, value, buf),
        (None, None) => {}
    }
}

fn encoded_len_either(tag: u32, shared: Option<&Bytes>, value: Option<&impl Message>) -> usize {
    match (shared, value) {
        (Some(encoded), _) => encoded.len(),
        (None, Some(value)) => message::encoded_len(tag, value),
        (None, None) => 0,
    }
}

impl WatchSslVpnServerResponse {
    /// The phase, or `Unspecified` for a number this build does not know.
    pub fn phase(&self) -> Phase {
        Phase::try_from(self.phase).unwrap_or_default()
    }

    pub fn set_phase(&mut self, phase: Phase) {
        self.phase = phase as i32;
    }
}

impl Message for WatchSslVpnServerResponse {
    fn encode_raw(&self, buf: &mut impl BufMut) {
        encode_either(
            GATEWAY,
            self.shared.gateway.as_ref(),
            self.gateway.as_ref(),
            buf,
        );
        if self.phase != 0 {
            int32::encode(PHASE, &self.phase, buf);
        }
        encode_either(
            SSL_VPN_SERVER,
            self.shared.ssl_vpn_server.as_ref(),
            self.ssl_vpn_server.as_ref(),
            buf,
        );
        if let Some(error) = &self.error {
            message::encode(ERROR, error, buf);
        }
        if let Some(elapsed) = &self.elapsed {
            message::encode(ELAPSED, elapsed, buf);
        }
        string::encode_repeated(PENDING_FIELDS, &self.pending_fields, buf);
    }

    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: WireType,
        buf: &mut impl bytes::Buf,
        ctx: DecodeContext,
    ) -> Result<(), DecodeError> {
        match tag {
            GATEWAY => message::merge(
                wire_type,
                self.gateway.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            PHASE => int32::merge(wire_type, &mut self.phase, buf, ctx),
            SSL_VPN_SERVER => message::merge(
                wire_type,
                self.ssl_vpn_server.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            ERROR => message::merge(
                wire_type,
                self.error.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            ELAPSED => message::merge(
                wire_type,
                self.elapsed.get_or_insert_with(Default::default),
                buf,
                ctx,
            ),
            PENDING_FIELDS => string::merge_repeated(wire_type, &mut self.pending_fields, buf, ctx),
            _ => skip_field(wire_type, tag, buf, ctx),
        }
    }

    fn encoded_len(&self) -> usize {
        let gateway =
            encoded_len_either(GATEWAY, self.shared.gateway.as_ref(), self.gateway.as_ref());
        let server = encoded_len_either(
            SSL_VPN_SERVER,
            self.shared.ssl_vpn_server.as_ref(),
            self.ssl_vpn_server.as_ref(),
        );
        let phase = if self.phase == 0 {
            0
        } else {
            int32::encoded_len(PHASE, &self.phase)
        };
        gateway
            + phase
            + server
            + self
                .error
                .as_ref()
                .map_or(0, |e| message::encoded_len(ERROR, e))
            + self
                .elapsed
                .as_ref()
                .map_or(0, |d| message::encoded_len(ELAPSED, d))
            + string::encoded_len_repeated(PENDING_FIELDS, &self.pending_fields)
    }

    fn clear(&mut self) {
        *self = Self::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn full() -> WatchSslVpnServerResponse {
        WatchSslVpnServerResponse {
            gateway: Some(GatewayState {
                vpn_gateway_id: "vpn-a".into(),
                status: 2,
                business_status: "Normal".into(),
                observed_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 5,
                }),
            }),
            phase: Phase::Applying as i32,
            ssl_vpn_server: Some(SslVpnServer {
                ssl_vpn_server_id: "vss-a".into(),
                port: 1194,
                dns_servers: "10.0.0.2".into(),
                ..SslVpnServer::default()
            }),
            error: Some(tonic_types::pb::Status {
                code: 10,
                message: "m".into(),
                details: Vec::new(),
            }),
            elapsed: Some(prost_types::Duration {
                seconds: 3,
                nanos: 0,
            }),
            pending_fields: vec!["port".into(), "cipher".into()],
            shared: SharedParts::default(),
        }
    }

    /// The same message as `pb`'s generated type, which clients decode.
    fn generated(m: &WatchSslVpnServerResponse) -> pb::WatchSslVpnServerResponse {
        pb::WatchSslVpnServerResponse {
            gateway: m.gateway.clone(),
            phase: m.phase,
            ssl_vpn_server: m.ssl_vpn_server.clone(),
            error: m.error.clone(),
            elapsed: m.elapsed,
            pending_fields: m.pending_fields.clone(),
        }
    }

    #[test]
    fn it_writes_the_bytes_prost_writes_and_reads_them_back() {
        for m in [full(), WatchSslVpnServerResponse::default()] {
            let bytes = m.encode_to_vec();
            assert_eq!(bytes, generated(&m).encode_to_vec());
            assert_eq!(bytes.len(), m.encoded_len());
            assert_eq!(WatchSslVpnServerResponse::decode(&bytes[..]).unwrap(), m);
        }
    }

    #[test]
    fn shared_parts_stand_in_for_their_fields_byte_for_byte() {
        let m = full();
        let gateway = SharedParts::encode_gateway(m.gateway.as_ref().unwrap());
        let server = SharedParts::encode_ssl_vpn_server(m.ssl_vpn_server.as_ref().unwrap());
        let shared = WatchSslVpnServerResponse {
            gateway: None,
            ssl_vpn_server: None,
            shared: SharedParts {
                gateway: Some(gateway),
                ssl_vpn_server: Some(server),
            },
            ..m.clone()
        };
        let bytes = shared.encode_to_vec();
        assert_eq!(bytes, m.encode_to_vec());
        assert_eq!(bytes.len(), shared.encoded_len());
        let decoded = WatchSslVpnServerResponse::decode(&bytes[..]).unwrap();
        assert_eq!(decoded, m, "decoding fills the fields, not `shared`");
        let client = pb::WatchSslVpnServerResponse::decode(&bytes[..]).unwrap();
        assert_eq!(client, generated(&m), "a client reads what it was sent");
    }

    #[test]
    fn unknown_fields_from_a_newer_contract_are_skipped() {
        let mut bytes = full().encode_to_vec();
        string::encode(99, &"from the future".to_owned(), &mut bytes);
        let decoded = WatchSslVpnServerResponse::decode(&bytes[..]).unwrap();
        assert_eq!(decoded, full());
    }
}
