//! The operation id: an opaque, versioned, self-contained handle of an
//! accepted change.
//!
//! It carries everything a watch needs to judge completion — the region,
//! server, gateway, the requested values and when the cloud accepted them —
//! so any replica can resume a watch from it and no replica keeps state for
//! it. The encoding is `op1.` followed by unpadded base64url of a JSON body:
//! readable by newer versions (the prefix names the version), and refused
//! cleanly when malformed or over-long, since it comes from callers.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use serde::{Deserialize, Serialize};

use crate::{
    domain::{Changes, Field, RegionId},
    validate::{self, Violation},
};

const PREFIX_V1: &str = "op1.";
/// Far above any real id (a few hundred bytes), far below a message limit.
const MAX_ID_LEN: usize = 4096;

/// An accepted change, as encoded in its id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Operation {
    #[serde(rename = "r")]
    pub region_id: RegionId,
    #[serde(rename = "s")]
    pub ssl_vpn_server_id: String,
    #[serde(rename = "g")]
    pub vpn_gateway_id: String,
    /// The requested values.
    #[serde(rename = "c")]
    pub changes: Changes,
    /// When the cloud accepted the change, in Unix milliseconds.
    #[serde(rename = "t")]
    pub accepted_at_ms: i64,
    /// The idempotency token the change was sent with.
    #[serde(rename = "k", default)]
    pub client_token: String,
}

impl Operation {
    pub fn accepted_at(&self) -> SystemTime {
        match u64::try_from(self.accepted_at_ms) {
            Ok(ms) => UNIX_EPOCH + Duration::from_millis(ms),
            Err(_) => UNIX_EPOCH,
        }
    }

    /// Encodes the id handed to callers.
    pub fn encode(&self) -> String {
        // Serialising plain data into a Vec cannot fail.
        let json = serde_json::to_vec(self).unwrap_or_default();
        format!("{PREFIX_V1}{}", URL_SAFE_NO_PAD.encode(json))
    }

    /// Decodes a caller's id; every malformed id is an `operation_id`
    /// violation, never a panic.
    pub fn decode(id: &str) -> Result<Self, Violation> {
        let bad = |why: &str| {
            Violation::new(
                Field::OperationId,
                "InvalidParameter.OperationId",
                format!("operation_id is not one this service issued: {why}"),
            )
        };
        if id.len() > MAX_ID_LEN {
            return Err(bad("too long"));
        }
        let body = id
            .strip_prefix(PREFIX_V1)
            .ok_or_else(|| bad("unknown version prefix"))?;
        let json = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| bad("not base64url"))?;
        let op: Operation = serde_json::from_slice(&json).map_err(|_| bad("unreadable body"))?;
        // Re-check what the id claims: it came from outside.
        validate::region_id(op.region_id.as_str()).map_err(|_| bad("bad region"))?;
        validate::ssl_vpn_server_id(&op.ssl_vpn_server_id).map_err(|_| bad("bad server id"))?;
        if op.changes.is_empty() || op.vpn_gateway_id.is_empty() {
            return Err(bad("incomplete"));
        }
        if !is_gateway_id(&op.vpn_gateway_id) {
            return Err(bad("bad gateway id"));
        }
        Ok(op)
    }
}

/// `vpn-` and lowercase letters and digits, as the cloud issues them: the
/// id names a poller and goes upstream, so nothing else gets through.
fn is_gateway_id(id: &str) -> bool {
    id.len() <= 64
        && id.strip_prefix("vpn-").is_some_and(|body| {
            !body.is_empty()
                && body
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        })
}

/// Milliseconds since the Unix epoch, for `accepted_at_ms`.
pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Operation {
        Operation {
            region_id: validate::region_id("cn-hangzhou").unwrap(),
            ssl_vpn_server_id: "vss-abc123".into(),
            vpn_gateway_id: "vpn-xyz".into(),
            changes: Changes {
                port: Some(1195),
                local_subnet: Some(vec!["10.0.0.0/24".parse().unwrap()]),
                ..Changes::default()
            },
            accepted_at_ms: 1_764_000_000_000,
            client_token: "tok".into(),
        }
    }

    #[test]
    fn round_trips() {
        let op = sample();
        let id = op.encode();
        assert!(id.starts_with("op1."));
        assert_eq!(Operation::decode(&id), Ok(op));
    }

    #[test]
    fn refuses_malformed_ids() {
        let good = sample().encode();
        let tampered_region = {
            let mut op = sample();
            op.region_id = RegionId::new_unchecked("evil.com/x".into());
            op.encode()
        };
        let tampered_gateway = {
            let mut op = sample();
            op.vpn_gateway_id = "vpn-x/../../admin".into();
            op.encode()
        };
        let bad_json = format!("op1.{}", URL_SAFE_NO_PAD.encode(b"{\"r\":1}"));
        for id in [
            "",
            "op1.",
            "op2.abc",
            "op1.!!!",
            &good[..good.len() - 3],
            &tampered_region,
            &tampered_gateway,
            &bad_json,
            &format!("op1.{}", "A".repeat(5000)),
        ] {
            let err = Operation::decode(id).unwrap_err();
            assert_eq!(err.code, "InvalidParameter.OperationId", "{id}");
        }
    }
}
