//! When is a change done? The completion rules, as a pure state machine fed
//! with observations, so they can be tested without clocks or networks.
//!
//! The trap this avoids: right after ModifySslVpnServer the gateway still
//! reads `active` for a few seconds before the cloud picks the task up. With
//! an operation, success therefore needs the requested values to be visible
//! on an `active` gateway; "active" alone is never enough. Without one,
//! success means the gateway became `active` again after having been busy.

use crate::{
    domain::{Field, GatewayStatus, SslVpnServer, VpnGateway},
    error::{Error, Kind},
    operation::Operation,
};

/// Where a watched change stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Phase {
    Pending,
    Applying,
    Succeeded,
    Failed,
    TimedOut,
}

impl Phase {
    pub fn is_terminal(self) -> bool {
        matches!(self, Phase::Succeeded | Phase::Failed | Phase::TimedOut)
    }
}

/// The verdict on one observation.
#[derive(Clone, Debug)]
pub struct Verdict {
    pub phase: Phase,
    /// The operation's fields not yet visible on the server.
    pub pending: Vec<Field>,
    /// Why, when `phase` is `Failed`.
    pub error: Option<Error>,
}

/// Judges a stream of observations of one server and its gateway.
#[derive(Clone, Debug)]
pub struct Tracker {
    operation: Option<Operation>,
    observations: u64,
    saw_busy: bool,
    /// After completion, for `follow`: every active gateway reads as done.
    steady: bool,
}

impl Tracker {
    pub fn new(operation: Option<Operation>) -> Self {
        Self {
            operation,
            observations: 0,
            saw_busy: false,
            steady: false,
        }
    }

    /// The tracker a `follow` watch continues with once its change is done:
    /// ACTIVE reads SUCCEEDED, anything busy APPLYING.
    pub fn steady() -> Self {
        Self {
            steady: true,
            ..Self::new(None)
        }
    }

    /// Judges the latest observation; `server` is `None` when the server is
    /// no longer there.
    pub fn observe(&mut self, gateway: &VpnGateway, server: Option<&SslVpnServer>) -> Verdict {
        self.observations += 1;
        let first = self.observations == 1;
        let Some(server) = server else {
            return failed(Error::new(
                Kind::NotFound,
                "InvalidSslVpnServerId.NotFound",
                "the SSL server no longer exists",
            ));
        };
        if gateway.is_financially_locked() {
            return failed(Error::new(
                Kind::Locked,
                "VpnGateway.FinancialLocked",
                "the gateway is locked for overdue payment; top up the account",
            ));
        }
        let status = gateway.status();
        if status == GatewayStatus::Deleting {
            return failed(Error::new(
                Kind::Conflict,
                "IncorrectStatus.VpnGateway",
                "the gateway is being deleted",
            ));
        }
        let active = status == GatewayStatus::Active;
        if !active {
            self.saw_busy = true;
        }
        match &self.operation {
            Some(op) => {
                let pending = op.changes.pending_against(server);
                let phase = match (active, pending.is_empty()) {
                    (true, true) => Phase::Succeeded,
                    // Values not visible yet on an active gateway: the cloud
                    // has not picked the change up (or re-applies it).
                    (true, false) => Phase::Pending,
                    (false, _) => Phase::Applying,
                };
                Verdict {
                    phase,
                    pending,
                    error: None,
                }
            }
            None => {
                let phase = match (active, first || self.saw_busy || self.steady) {
                    (true, true) => Phase::Succeeded,
                    (true, false) => Phase::Pending,
                    (false, _) => Phase::Applying,
                };
                Verdict {
                    phase,
                    pending: Vec::new(),
                    error: None,
                }
            }
        }
    }
}

fn failed(error: Error) -> Verdict {
    Verdict {
        phase: Phase::Failed,
        pending: Vec::new(),
        error: Some(error),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{domain::Changes, validate};

    fn gateway(status: &str) -> VpnGateway {
        VpnGateway {
            vpn_gateway_id: "vpn-1".into(),
            status: status.into(),
            business_status: "Normal".into(),
            ..VpnGateway::default()
        }
    }

    fn server(port: u16) -> SslVpnServer {
        SslVpnServer {
            ssl_vpn_server_id: "vss-1".into(),
            vpn_gateway_id: "vpn-1".into(),
            port,
            ..SslVpnServer::default()
        }
    }

    fn operation(port: u16) -> Operation {
        Operation {
            region_id: validate::region_id("cn-hangzhou").unwrap(),
            ssl_vpn_server_id: "vss-1".into(),
            vpn_gateway_id: "vpn-1".into(),
            changes: Changes {
                port: Some(port),
                ..Changes::default()
            },
            accepted_at_ms: 0,
            client_token: String::new(),
        }
    }

    #[test]
    fn the_accept_lag_never_reads_as_success() {
        let mut t = Tracker::new(Some(operation(1195)));
        let lag = t.observe(&gateway("active"), Some(&server(1194)));
        assert_eq!(lag.phase, Phase::Pending);
        assert_eq!(lag.pending, vec![Field::Port]);
        assert_eq!(
            t.observe(&gateway("updating"), Some(&server(1194))).phase,
            Phase::Applying
        );
        let done = t.observe(&gateway("active"), Some(&server(1195)));
        assert_eq!(done.phase, Phase::Succeeded);
        assert!(done.pending.is_empty());
    }

    #[test]
    fn values_visible_while_updating_are_not_success_yet() {
        let mut t = Tracker::new(Some(operation(1195)));
        assert_eq!(
            t.observe(&gateway("updating"), Some(&server(1195))).phase,
            Phase::Applying
        );
    }

    #[test]
    fn without_operation_an_idle_gateway_is_done_at_once() {
        let mut t = Tracker::new(None);
        assert_eq!(
            t.observe(&gateway("active"), Some(&server(1194))).phase,
            Phase::Succeeded
        );
    }

    #[test]
    fn without_operation_success_waits_for_active_after_busy() {
        let mut t = Tracker::new(None);
        assert_eq!(
            t.observe(&gateway("updating"), Some(&server(1194))).phase,
            Phase::Applying
        );
        assert_eq!(
            t.observe(&gateway("active"), Some(&server(1194))).phase,
            Phase::Succeeded
        );
    }

    #[test]
    fn steady_tracking_follows_the_gateway_after_completion() {
        let mut t = Tracker::steady();
        let phases: Vec<Phase> = ["active", "updating", "active", "active"]
            .iter()
            .map(|s| t.observe(&gateway(s), Some(&server(1))).phase)
            .collect();
        assert_eq!(
            phases,
            [
                Phase::Succeeded,
                Phase::Applying,
                Phase::Succeeded,
                Phase::Succeeded
            ]
        );
    }

    #[test]
    fn permanent_conditions_fail_with_the_cloud_code() {
        let cases = [
            (gateway("active"), None, "InvalidSslVpnServerId.NotFound"),
            (
                gateway("deleting"),
                Some(server(1)),
                "IncorrectStatus.VpnGateway",
            ),
            (
                VpnGateway {
                    business_status: "FinancialLocked".into(),
                    ..gateway("active")
                },
                Some(server(1)),
                "VpnGateway.FinancialLocked",
            ),
        ];
        for (gw, srv, code) in cases {
            let v = Tracker::new(Some(operation(1195))).observe(&gw, srv.as_ref());
            assert_eq!(v.phase, Phase::Failed);
            assert_eq!(
                v.error.map(|e| e.reason().to_owned()).as_deref(),
                Some(code)
            );
        }
    }
}
