//! The audit trail: one record per ModifySslVpnServer call, whatever its
//! end (success, refusal, failure, or the caller leaving), and the
//! `sslvpn_modifications_total` count that goes with it.
//!
//! Operators ask "who changed what on which server, and did it happen";
//! the record answers with the caller, the region and server, every field
//! the caller set with its new value, the client token, the cloud's
//! RequestId, the outcome and the duration. It is a `tracing` event with the
//! target `audit` (level INFO), so it goes wherever the logs go, as one JSON
//! object with `--log-format json`, and can be routed or silenced on its
//! own (`--log-level info,audit=off`). It never holds a credential: the
//! request's fields are configuration values, not secrets.
//!
//! The service begins a record through its `Gate` with what was asked, raw
//! (`ModifyRequested`), and finishes it with the result.

use std::{
    collections::{HashMap, hash_map::Entry},
    fmt::Write as _,
    net::SocketAddr,
    sync::Mutex,
    time::{Duration, Instant},
};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::{identity::AuthError, peer::PeerKey};
use crate::{
    error::Error,
    modify::Accepted,
    service::gate::{ModifyAudit, ModifyRequested},
};

/// The results of `sslvpn_modifications_total`.
pub const MODIFICATION_RESULTS: [&str; 9] = [
    "accepted",
    "applied",
    "unchanged",
    "validated",
    "invalid",
    "not_found",
    "rejected",
    "failed",
    "cancelled",
];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabel {
    result: &'static str,
}

/// The reasons of `sslvpn_access_refusals_total`: calls refused (or
/// ended) by access control other than for their credentials or the policy.
pub const REFUSAL_REASONS: [&str; 4] =
    ["auth_throttled", "rate_limited", "stream_limit", "revoked"];

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabel {
    reason: &'static str,
}

/// `sslvpn_modifications_total{result}`, `sslvpn_auth_failures_total{reason}`
/// and `sslvpn_access_refusals_total{reason}`, every label value at zero
/// from the start. Cheap to clone (clones share the series); `Default`
/// counts into families no registry renders.
#[derive(Clone)]
pub struct AuditMetrics {
    modifications: Family<ResultLabel, Counter>,
    auth_failures: Family<ReasonLabel, Counter>,
    refusals: Family<ReasonLabel, Counter>,
}

impl Default for AuditMetrics {
    fn default() -> Self {
        let modifications = Family::<ResultLabel, Counter>::default();
        for result in MODIFICATION_RESULTS {
            // Seeded at zero; the guard goes at once (another would wait on it).
            drop(modifications.get_or_create(&ResultLabel { result }));
        }
        let auth_failures = Family::<ReasonLabel, Counter>::default();
        for why in AuthError::ALL {
            drop(auth_failures.get_or_create(&ReasonLabel { reason: why.kind() }));
        }
        let refusals = Family::<ReasonLabel, Counter>::default();
        for reason in REFUSAL_REASONS {
            drop(refusals.get_or_create(&ReasonLabel { reason }));
        }
        Self {
            modifications,
            auth_failures,
            refusals,
        }
    }
}

impl AuditMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sslvpn_modifications",
            "ModifySslVpnServer calls by result: accepted (an asynchronous change was sent), applied (a synchronous, name-only change), unchanged (nothing to send), validated (a dry run whose checks passed; nothing changed), invalid, not_found, rejected (busy, locked or a lost race), failed (cloud or gateway failure), cancelled (the caller left)",
            metrics.modifications.clone(),
        );
        registry.register(
            "sslvpn_auth_failures",
            "Failed authentications by reason: missing_credentials, malformed_authorization, unknown_token, certificate_without_identity",
            metrics.auth_failures.clone(),
        );
        registry.register(
            "sslvpn_access_refusals",
            "Calls refused or ended by access control: auth_throttled (the peer address failed to authenticate too often), rate_limited (the caller's request rate), stream_limit (a cap on open streams), revoked (a reload revoked the call's credentials)",
            metrics.refusals.clone(),
        );
        metrics
    }

    /// Counts a failed authentication.
    pub fn auth_failure(&self, why: AuthError) {
        self.auth_failures
            .get_or_create(&ReasonLabel { reason: why.kind() })
            .inc();
    }

    /// Counts a refusal; `reason` is one of [`REFUSAL_REASONS`].
    pub fn refused(&self, reason: &'static str) {
        self.refusals.get_or_create(&ReasonLabel { reason }).inc();
    }

    /// Counts `n` refusals at once (a revocation ending many calls).
    pub fn refused_many(&self, reason: &'static str, n: u64) {
        self.refusals
            .get_or_create(&ReasonLabel { reason })
            .inc_by(n);
    }
}

impl std::fmt::Debug for AuditMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditMetrics").finish_non_exhaustive()
    }
}

/// How often one kind of refusal from one peer address is written.
pub const SAMPLE_WINDOW: Duration = Duration::from_secs(60);

/// Most (reason, peer) pairs remembered; beyond it, refusals from peers not
/// yet remembered go unwritten until the window passes (still counted).
const MAX_SAMPLED: usize = 4096;

/// A refusal's reason and where it came from.
type SampleKey = (&'static str, PeerKey);

/// Lets an audit event of a refusal through at most once per reason and
/// peer address per window, counting the ones held back.
#[derive(Debug)]
pub struct Sampler {
    window: Duration,
    /// When each was last written, and how many were held back since.
    seen: Mutex<HashMap<SampleKey, (Instant, u64)>>,
}

impl Sampler {
    pub fn new(window: Duration) -> Self {
        Self {
            window,
            seen: Mutex::new(HashMap::new()),
        }
    }

    /// `Some(n)`: write the event now, noting the `n` held back since the
    /// last one; `None`: hold it back.
    pub fn sample(&self, reason: &'static str, peer: PeerKey) -> Option<u64> {
        let now = Instant::now();
        let window = self.window;
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.len() >= MAX_SAMPLED && !seen.contains_key(&(reason, peer)) {
            seen.retain(|_, (at, _)| now.duration_since(*at) < window);
            if seen.len() >= MAX_SAMPLED {
                return None;
            }
        }
        match seen.entry((reason, peer)) {
            Entry::Vacant(v) => {
                v.insert((now, 0));
                Some(0)
            }
            Entry::Occupied(mut o) => {
                let (at, held) = o.get_mut();
                if now.duration_since(*at) >= window {
                    *at = now;
                    Some(std::mem::take(held))
                } else {
                    *held += 1;
                    None
                }
            }
        }
    }
}

/// An audit record being written: `finish` completes it; dropped
/// unfinished (the caller cancelled), it is written as `cancelled`.
pub struct ModifyRecord {
    caller: String,
    peer: String,
    region_id: String,
    ssl_vpn_server_id: String,
    fields: Vec<&'static str>,
    changes: String,
    client_token: String,
    started: Instant,
    /// The call's span, entered to write the record: a record written on
    /// cancellation (from a drop, outside the span) still carries its ids.
    span: tracing::Span,
    done: bool,
    metrics: AuditMetrics,
}

impl ModifyRecord {
    /// Notes what the caller asked for, before anything is checked; the
    /// result is counted into `metrics`.
    pub fn begin(
        caller: &str,
        peer: Option<SocketAddr>,
        req: ModifyRequested<'_>,
        metrics: &AuditMetrics,
    ) -> Self {
        let (fields, changes) = requested_changes(&req.fields);
        Self {
            caller: caller.to_owned(),
            peer: peer.map(|a| a.to_string()).unwrap_or_default(),
            region_id: loggable(req.region_id),
            ssl_vpn_server_id: loggable(req.ssl_vpn_server_id),
            fields,
            changes,
            client_token: loggable(req.client_token),
            started: Instant::now(),
            span: tracing::Span::current(),
            done: false,
            metrics: metrics.clone(),
        }
    }

    /// Writes the record for the call's result.
    fn complete(&mut self, result: Result<&Accepted, &Error>) {
        let (outcome, code, request_id, reason) = match result {
            Ok(reply) => {
                if !reply.client_token.is_empty() {
                    // The token used, which the gateway generates when absent.
                    self.client_token.clone_from(&reply.client_token);
                }
                let outcome = match (reply.dry_run, reply.done, reply.request_id.is_empty()) {
                    (true, _, _) => "validated",
                    (false, false, _) => "accepted",
                    (false, true, false) => "applied",
                    (false, true, true) => "unchanged",
                };
                (outcome, "OK", reply.request_id.clone(), String::new())
            }
            Err(err) => (
                err.kind().audit_outcome(),
                crate::telemetry::grpc_code_name(i32::from(err.kind().grpc_code())),
                err.request_id().unwrap_or_default().to_owned(),
                err.reason().to_owned(),
            ),
        };
        self.write(outcome, code, &request_id, &reason);
    }

    fn write(&mut self, outcome: &'static str, code: &str, request_id: &str, reason: &str) {
        self.done = true;
        self.metrics
            .modifications
            .get_or_create(&ResultLabel { result: outcome })
            .inc();
        let _entered = self.span.enter();
        let duration_ms = u64::try_from(self.started.elapsed().as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            target: "audit",
            action = "ModifySslVpnServer",
            caller = %self.caller,
            peer = %self.peer,
            region_id = %self.region_id,
            ssl_vpn_server_id = %self.ssl_vpn_server_id,
            fields = %self.fields.join(","),
            changes = %self.changes,
            client_token = %self.client_token,
            request_id,
            outcome,
            code,
            reason,
            duration_ms,
            "modify {outcome}"
        );
    }
}

impl ModifyAudit for ModifyRecord {
    fn finish(mut self: Box<Self>, result: Result<&Accepted, &Error>) {
        self.complete(result);
    }
}

impl Drop for ModifyRecord {
    fn drop(&mut self) {
        if !self.done {
            self.write("cancelled", "CANCELLED", "", "");
        }
    }
}

/// The fields the caller set, and a JSON object of their new values (as
/// given: the record shows what was asked, valid or not).
/// Longest caller-supplied value written as is (longer ones are cut).
const MAX_LOGGED_CHARS: usize = 128;

/// A caller's raw string, as the record shows it: control characters
/// escaped, so a newline cannot forge a line of the text log, and cut short,
/// so a 64 KiB id cannot flood it. (The record is written for invalid
/// requests too, before validation.)
fn loggable(s: &str) -> String {
    let mut out = String::with_capacity(s.len().min(MAX_LOGGED_CHARS));
    for (i, c) in s.chars().enumerate() {
        if i == MAX_LOGGED_CHARS {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn requested_changes(values: &[(&'static str, serde_json::Value)]) -> (Vec<&'static str>, String) {
    let fields = values.iter().map(|(k, _)| *k).collect();
    let mut json = String::from("{");
    for (i, (k, v)) in values.iter().enumerate() {
        if i > 0 {
            json.push(',');
        }
        let _ = write!(json, "\"{k}\":{v}");
    }
    json.push('}');
    (fields, json)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_set_are_recorded_in_order_with_their_values() {
        let values = [
            ("local_subnet", serde_json::Value::from("10.0.0.0/24,\"x\"")),
            ("proto", "PROTOCOL_UDP".into()),
            ("port", 1195.into()),
            ("compress", false.into()),
        ];
        let (fields, json) = requested_changes(&values);
        assert_eq!(fields, ["local_subnet", "proto", "port", "compress"]);
        let parsed: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(parsed["port"], 1195);
        assert_eq!(parsed["local_subnet"], "10.0.0.0/24,\"x\"");
        assert_eq!(parsed["proto"], "PROTOCOL_UDP");
        assert_eq!(parsed["compress"], false);
        assert!(parsed.get("name").is_none());
    }

    #[test]
    fn caller_strings_cannot_forge_or_flood_the_log() {
        assert_eq!(loggable("cn-hangzhou"), "cn-hangzhou");
        let forged = loggable("cn-hangzhou\n2026-12-01T00:00:00Z INFO audit: outcome=applied");
        assert!(!forged.contains('\n'), "{forged}");
        assert!(forged.starts_with("cn-hangzhou\\n2026"), "{forged}");
        let long = loggable(&"a".repeat(65_536));
        assert_eq!(long.chars().count(), MAX_LOGGED_CHARS + 1);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn a_dry_run_is_counted_as_validated_not_applied() {
        let metrics = AuditMetrics::default();
        let count = |result| {
            metrics
                .modifications
                .get_or_create(&ResultLabel { result })
                .get()
        };
        let requested = || ModifyRequested {
            region_id: "cn-hangzhou",
            ssl_vpn_server_id: "vss-a",
            client_token: "",
            fields: vec![("port", 1195.into()), ("validate_only", true.into())],
        };
        let reply = Accepted {
            server: crate::domain::SslVpnServer::default(),
            request_id: "DRY-1".into(),
            client_token: String::new(),
            operation: crate::operation::Operation {
                region_id: crate::validate::region_id("cn-hangzhou").unwrap(),
                ssl_vpn_server_id: "vss-a".into(),
                vpn_gateway_id: "vpn-a".into(),
                changes: crate::domain::Changes::default(),
                accepted_at_ms: 0,
                client_token: String::new(),
            },
            done: true,
            dry_run: true,
        };
        ModifyRecord::begin("alice", None, requested(), &metrics).complete(Ok(&reply));
        assert_eq!(count("validated"), 1);
        assert_eq!(
            count("applied"),
            0,
            "done with a RequestId, yet nothing applied"
        );
        let real = Accepted {
            dry_run: false,
            ..reply
        };
        ModifyRecord::begin("alice", None, requested(), &metrics).complete(Ok(&real));
        assert_eq!(count("applied"), 1);
    }

    #[test]
    fn refusals_are_written_once_per_reason_peer_and_window() {
        let sampler = Sampler::new(Duration::from_millis(50));
        let a = PeerKey::of("127.0.0.2".parse().unwrap());
        let b = PeerKey::of("127.0.0.3".parse().unwrap());
        assert_eq!(sampler.sample("max_connections_per_peer", a), Some(0));
        for _ in 0..5 {
            assert_eq!(sampler.sample("max_connections_per_peer", a), None);
        }
        assert_eq!(sampler.sample("handshake_timeout", a), Some(0));
        assert_eq!(sampler.sample("max_connections_per_peer", b), Some(0));
        std::thread::sleep(Duration::from_millis(60));
        assert_eq!(sampler.sample("max_connections_per_peer", a), Some(5));
    }

    #[test]
    fn nothing_set_is_an_empty_object() {
        let (fields, json) = requested_changes(&[]);
        assert!(fields.is_empty());
        assert_eq!(json, "{}");
    }
}
