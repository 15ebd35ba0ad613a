//! What the emulator has seen, for tests and benchmarks to assert on.
//!
//! Requests are counted per action and outcome (`Success` or the error code
//! answered, `ConnectionReset` and `AppliedThenDropped` for the two
//! connection faults); accepted modifications per ClientToken (the token the
//! cloud used: the RequestId when the caller gave none), so "applied once"
//! is checkable; status polls per gateway and server; calls the account's
//! quota throttled, per action. `GET /_emulator/counters` serves the same
//! structure as JSON.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// The outcome name of an answered request.
pub const SUCCESS: &str = "Success";
pub const CONNECTION_RESET: &str = "ConnectionReset";
pub const APPLIED_THEN_DROPPED: &str = "AppliedThenDropped";
/// The action name of a request that named none the emulator knows.
pub const UNKNOWN_ACTION: &str = "(unknown)";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Counters {
    /// action → outcome → requests.
    pub requests: BTreeMap<String, BTreeMap<String, u64>>,
    /// ClientToken → modifications accepted with it (replays not counted).
    pub modifications_by_client_token: BTreeMap<String, u64>,
    /// Modifications accepted (synchronous ones included).
    pub modifications_accepted: u64,
    /// Asynchronous modifications whose change became visible.
    pub modifications_completed: u64,
    /// Gateway id → DescribeVpnGateway(s) requests that asked for it by id.
    pub gateway_polls: BTreeMap<String, u64>,
    /// Server id (or gateway id) → DescribeSslVpnServers requests that asked for it.
    pub server_polls: BTreeMap<String, u64>,
    /// Fault kind → times injected.
    pub faults_injected: BTreeMap<String, u64>,
    /// Action → calls refused by the account's quota (`Throttling.User`;
    /// also an outcome in `requests`, with throttling faults).
    #[serde(default)]
    pub throttled: BTreeMap<String, u64>,
    /// The W3C `traceparent` headers of the latest requests (oldest first,
    /// at most [`TRACEPARENTS_KEPT`]), so tests can check that callers
    /// propagate their trace.
    #[serde(default)]
    pub traceparents: Vec<String>,
}

/// How many `traceparent` headers the counters keep.
pub const TRACEPARENTS_KEPT: usize = 256;

impl Counters {
    pub fn record(&mut self, action: &str, outcome: &str) {
        *self
            .requests
            .entry(action.to_owned())
            .or_default()
            .entry(outcome.to_owned())
            .or_default() += 1;
    }

    /// Requests of `action` that ended with `outcome`.
    pub fn requests(&self, action: &str, outcome: &str) -> u64 {
        self.requests
            .get(action)
            .and_then(|o| o.get(outcome))
            .copied()
            .unwrap_or(0)
    }

    /// Every request of `action`, whatever its outcome.
    pub fn total(&self, action: &str) -> u64 {
        self.requests
            .get(action)
            .map(|o| o.values().sum())
            .unwrap_or(0)
    }

    /// Modifications accepted with `token`.
    pub fn modifications_with_token(&self, token: &str) -> u64 {
        self.modifications_by_client_token
            .get(token)
            .copied()
            .unwrap_or(0)
    }

    /// Calls of `action` the account's quota throttled.
    pub fn throttled(&self, action: &str) -> u64 {
        self.throttled.get(action).copied().unwrap_or(0)
    }

    /// Status polls of `gateway_id`.
    pub fn gateway_polls(&self, gateway_id: &str) -> u64 {
        self.gateway_polls.get(gateway_id).copied().unwrap_or(0)
    }

    /// Keeps a request's `traceparent`, dropping the oldest beyond the cap.
    pub fn record_traceparent(&mut self, value: &str) {
        if self.traceparents.len() >= TRACEPARENTS_KEPT {
            self.traceparents.remove(0);
        }
        self.traceparents.push(value.to_owned());
    }

    pub(crate) fn bump(map: &mut BTreeMap<String, u64>, key: &str) {
        *map.entry(key.to_owned()).or_default() += 1;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_by_action_and_outcome() {
        let mut c = Counters::default();
        c.record("ModifySslVpnServer", SUCCESS);
        c.record("ModifySslVpnServer", "VpnGateway.Configuring");
        c.record("ModifySslVpnServer", SUCCESS);
        assert_eq!(c.requests("ModifySslVpnServer", SUCCESS), 2);
        assert_eq!(c.total("ModifySslVpnServer"), 3);
        assert_eq!(c.total("DescribeVpnGateway"), 0);
        let json = serde_json::to_value(&c).unwrap();
        assert_eq!(json["requests"]["ModifySslVpnServer"]["Success"], 2);
    }
}
