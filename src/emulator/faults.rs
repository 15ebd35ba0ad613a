//! Injected trouble: what a flaky cloud does to a caller, per action, by
//! probability or by script.
//!
//! Each action (or `*` for every action without its own entry) may get a
//! fixed added latency with jitter, and per request one [`Fault`]: taken from
//! the front of its script while the script lasts, otherwise drawn by the
//! configured probabilities. The faults are the cloud's transient failures
//! (500 `InternalError`, 503 `ServiceUnavailable`, 400 `SystemBusy`, 400
//! `Throttling.User` with `x-acs-retry-after`, 400 `Throttling`, 500
//! `UnknownError`), the codes of a gateway busy with another task (409
//! `OperationConflict`, 400 `TaskConflict`, `VpnTask.CONFLICT`,
//! `IncorrectStatus.VpnGateway`), a latency spike, a connection reset before
//! any response, and "applied, then the connection drops": the action runs
//! (a modification is accepted) but the caller only sees the connection die.
//!
//! Whether an error carries `x-acs-retry-after` is set per fault: no source
//! confirms the VPC API sends it, so only `throttling` has it by default
//! (as before); `retry_after_ms_by_fault` adds it to any error fault or, with
//! 0, takes it away.

use std::{
    collections::{BTreeMap, VecDeque},
    time::Duration,
};

use http::StatusCode;
use serde::{Deserialize, Serialize};

use super::errors::{ApiError, code};

/// What happens to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Fault {
    /// Nothing: answer normally.
    Ok,
    /// Answer normally after an extra `spike_ms`.
    Latency,
    /// 500 `InternalError`.
    InternalError,
    /// 503 `ServiceUnavailable`.
    ServiceUnavailable,
    /// 400 `SystemBusy`.
    SystemBusy,
    /// 400 `Throttling.User` with `x-acs-retry-after: retry_after_ms`.
    Throttling,
    /// 400 `Throttling`: the plain flow-control code of the common tables.
    ThrottlingPlain,
    /// 409 `OperationConflict`: another request on the resource is running.
    OperationConflict,
    /// 400 `TaskConflict`: the gateway runs another task.
    TaskConflict,
    /// 400 `VpnTask.CONFLICT`: the same, in the VPN service's spelling.
    VpnTaskConflict,
    /// 400 `IncorrectStatus.VpnGateway`: the gateway's state forbids it now.
    IncorrectStatus,
    /// 500 `UnknownError`, which VPN gateways answer while configuring.
    UnknownError,
    /// The connection is reset before any response byte.
    Reset,
    /// The action runs, then the connection is reset instead of answering.
    AppliedThenDrop,
}

impl Fault {
    pub fn name(self) -> &'static str {
        match self {
            Fault::Ok => "ok",
            Fault::Latency => "latency",
            Fault::InternalError => "internal_error",
            Fault::ServiceUnavailable => "service_unavailable",
            Fault::SystemBusy => "system_busy",
            Fault::Throttling => "throttling",
            Fault::ThrottlingPlain => "throttling_plain",
            Fault::OperationConflict => "operation_conflict",
            Fault::TaskConflict => "task_conflict",
            Fault::VpnTaskConflict => "vpn_task_conflict",
            Fault::IncorrectStatus => "incorrect_status",
            Fault::UnknownError => "unknown_error",
            Fault::Reset => "reset",
            Fault::AppliedThenDrop => "applied_then_drop",
        }
    }

    /// The error answered instead of running the action, if any, with
    /// `x-acs-retry-after: retry_after_ms` when that is given.
    pub fn error(self, retry_after_ms: Option<u64>) -> Option<ApiError> {
        let error = match self {
            Fault::InternalError => ApiError::internal(),
            Fault::ServiceUnavailable => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                code::SERVICE_UNAVAILABLE,
                "The request has failed due to a temporary failure of the server.",
            ),
            Fault::SystemBusy => ApiError::bad_request(
                code::SYSTEM_BUSY,
                "The system is busy. Please try again later.",
            ),
            Fault::Throttling => ApiError::bad_request(
                code::THROTTLING_USER,
                "Request was denied due to user flow control.",
            ),
            Fault::ThrottlingPlain => ApiError::bad_request(
                code::THROTTLING,
                "Request was denied due to request throttling.",
            ),
            Fault::OperationConflict => ApiError::new(
                StatusCode::CONFLICT,
                code::OPERATION_CONFLICT,
                // sic: the reference's spelling.
                "Request was denied due to conflict with a previos request.",
            ),
            Fault::TaskConflict => ApiError::bad_request(
                code::TASK_CONFLICT,
                "The operation conflicts with a task that is running on the resource.",
            ),
            Fault::VpnTaskConflict => ApiError::bad_request(
                code::VPN_TASK_CONFLICT,
                "The VPN task conflicts with another task of the VPN gateway.",
            ),
            Fault::IncorrectStatus => ApiError::bad_request(
                code::INCORRECT_STATUS_VPN_GATEWAY,
                "The current status of the VPN gateway does not support this operation.",
            ),
            Fault::UnknownError => ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                code::UNKNOWN_ERROR,
                "The request processing has failed due to some unknown error.",
            ),
            Fault::Ok | Fault::Latency | Fault::Reset | Fault::AppliedThenDrop => return None,
        };
        Some(ApiError {
            retry_after_ms: retry_after_ms.map(|ms| ms.max(1)),
            ..error
        })
    }
}

fn default_spike_ms() -> u64 {
    1000
}

fn default_retry_after_ms() -> u64 {
    1000
}

/// The faults of one action.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActionFaults {
    /// Added to every request.
    #[serde(default)]
    pub latency_ms: u64,
    /// Plus a uniform random 0..=jitter.
    #[serde(default)]
    pub latency_jitter_ms: u64,
    /// The extra delay of a `latency` fault.
    #[serde(default = "default_spike_ms")]
    pub spike_ms: u64,
    /// The `x-acs-retry-after` of a `throttling` fault, in milliseconds.
    #[serde(default = "default_retry_after_ms")]
    pub retry_after_ms: u64,
    /// `x-acs-retry-after` per error fault, in milliseconds; 0 sends none.
    /// A fault not named sends none, except `throttling` (`retry_after_ms`).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub retry_after_ms_by_fault: BTreeMap<Fault, u64>,
    /// Per-request probability of each fault (summing to at most 1).
    #[serde(default)]
    pub probabilities: BTreeMap<Fault, f64>,
    /// Faults for the next requests, in order; `ok` passes one through.
    #[serde(default)]
    pub script: VecDeque<Fault>,
}

impl Default for ActionFaults {
    fn default() -> Self {
        Self {
            latency_ms: 0,
            latency_jitter_ms: 0,
            spike_ms: default_spike_ms(),
            retry_after_ms: default_retry_after_ms(),
            retry_after_ms_by_fault: BTreeMap::new(),
            probabilities: BTreeMap::new(),
            script: VecDeque::new(),
        }
    }
}

impl ActionFaults {
    /// A script of faults, nothing else.
    pub fn script(faults: impl IntoIterator<Item = Fault>) -> Self {
        Self {
            script: faults.into_iter().collect(),
            ..Self::default()
        }
    }

    /// The `x-acs-retry-after` a `fault` answers with.
    fn retry_after_of(&self, fault: Fault) -> Option<u64> {
        match self.retry_after_ms_by_fault.get(&fault) {
            Some(0) => None,
            Some(ms) => Some(*ms),
            None if fault == Fault::Throttling => Some(self.retry_after_ms),
            None => None,
        }
    }

    /// Why this configuration is unusable, if it is.
    pub fn check(&self) -> Result<(), String> {
        let mut sum = 0.0;
        for (fault, p) in &self.probabilities {
            if !(0.0..=1.0).contains(p) {
                return Err(format!(
                    "probability of {} is {p}; it must be 0 to 1",
                    fault.name()
                ));
            }
            sum += p;
        }
        if sum > 1.0 + 1e-9 {
            return Err(format!("probabilities sum to {sum}; at most 1"));
        }
        Ok(())
    }
}

/// The per-action fault configuration; the key `*` applies to every action
/// without an entry of its own.
pub type FaultTable = BTreeMap<String, ActionFaults>;

/// What to do to one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Decision {
    pub fault: Fault,
    /// Total delay before answering (latency, jitter, spike).
    pub delay: Duration,
    /// The `x-acs-retry-after` of the fault's error, if it has one.
    pub retry_after_ms: Option<u64>,
}

/// Decides the fate of one request of `action`, consuming a script step.
pub fn decide(table: &mut FaultTable, action: &str, rng: &mut fastrand::Rng) -> Decision {
    let key = if table.contains_key(action) {
        action
    } else {
        "*"
    };
    let Some(faults) = table.get_mut(key) else {
        return Decision {
            fault: Fault::Ok,
            delay: Duration::ZERO,
            retry_after_ms: None,
        };
    };
    let fault = match faults.script.pop_front() {
        Some(f) => f,
        None => {
            let roll = rng.f64();
            let mut acc = 0.0;
            faults
                .probabilities
                .iter()
                .find(|(_, p)| {
                    acc += **p;
                    roll < acc
                })
                .map(|(f, _)| *f)
                .unwrap_or(Fault::Ok)
        }
    };
    let jitter = if faults.latency_jitter_ms > 0 {
        rng.u64(0..=faults.latency_jitter_ms)
    } else {
        0
    };
    let spike = if fault == Fault::Latency {
        faults.spike_ms
    } else {
        0
    };
    Decision {
        fault,
        delay: Duration::from_millis(
            faults
                .latency_ms
                .saturating_add(jitter)
                .saturating_add(spike),
        ),
        retry_after_ms: faults.retry_after_of(fault),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scripts_run_first_then_probabilities() {
        let mut table = FaultTable::new();
        let mut faults = ActionFaults::script([Fault::InternalError, Fault::Ok, Fault::Latency]);
        faults.probabilities.insert(Fault::ServiceUnavailable, 1.0);
        faults.spike_ms = 250;
        table.insert("ModifySslVpnServer".into(), faults);
        let mut rng = fastrand::Rng::with_seed(7);
        let mut next = || decide(&mut table, "ModifySslVpnServer", &mut rng);
        assert_eq!(next().fault, Fault::InternalError);
        assert_eq!(next().fault, Fault::Ok);
        let spike = next();
        assert_eq!(
            (spike.fault, spike.delay),
            (Fault::Latency, Duration::from_millis(250))
        );
        assert_eq!(next().fault, Fault::ServiceUnavailable);
        assert_eq!(next().fault, Fault::ServiceUnavailable);
    }

    #[test]
    fn wildcard_applies_to_actions_without_their_own_entry() {
        let mut table = FaultTable::new();
        table.insert(
            "*".into(),
            ActionFaults {
                latency_ms: 40,
                latency_jitter_ms: 10,
                ..ActionFaults::default()
            },
        );
        table.insert("DescribeVpnGateway".into(), ActionFaults::default());
        let mut rng = fastrand::Rng::with_seed(1);
        let d = decide(&mut table, "DescribeSslVpnServers", &mut rng);
        assert_eq!(d.fault, Fault::Ok);
        assert!((40..=50).contains(&d.delay.as_millis()));
        assert_eq!(
            decide(&mut table, "DescribeVpnGateway", &mut rng).delay,
            Duration::ZERO
        );
        assert_eq!(
            decide(&mut FaultTable::new(), "x", &mut rng).fault,
            Fault::Ok
        );
    }

    #[test]
    fn probabilities_are_roughly_honoured() {
        let mut table = FaultTable::new();
        let mut faults = ActionFaults::default();
        faults.probabilities.insert(Fault::SystemBusy, 0.25);
        table.insert("*".into(), faults);
        let mut rng = fastrand::Rng::with_seed(42);
        let busy = (0..4000)
            .filter(|_| decide(&mut table, "a", &mut rng).fault == Fault::SystemBusy)
            .count();
        assert!((800..1200).contains(&busy), "{busy}");
    }

    #[test]
    fn bad_probabilities_are_refused_and_names_parse() {
        let mut f = ActionFaults::default();
        f.probabilities.insert(Fault::Reset, 0.7);
        f.probabilities.insert(Fault::Throttling, 0.7);
        assert!(f.check().is_err());
        let parsed: ActionFaults = serde_json::from_str(
            r#"{"script":["reset","applied_then_drop","ok"],"retry_after_ms":1500}"#,
        )
        .unwrap();
        assert_eq!(parsed.script.len(), 3);
        assert_eq!(parsed.retry_after_of(Fault::Throttling), Some(1500));
        assert_eq!(
            Fault::Throttling
                .error(parsed.retry_after_of(Fault::Throttling))
                .unwrap()
                .retry_after_ms,
            Some(1500)
        );
    }

    #[test]
    fn retry_after_is_optional_per_fault() {
        let parsed: ActionFaults = serde_json::from_str(
            r#"{"script":["operation_conflict","throttling","throttling_plain"],
                "retry_after_ms_by_fault":{"operation_conflict":2500,"throttling":0}}"#,
        )
        .unwrap();
        assert_eq!(parsed.retry_after_of(Fault::OperationConflict), Some(2500));
        assert_eq!(
            parsed.retry_after_of(Fault::Throttling),
            None,
            "0 sends none"
        );
        assert_eq!(parsed.retry_after_of(Fault::ThrottlingPlain), None);
        let mut table = FaultTable::from([("*".to_owned(), parsed)]);
        let mut rng = fastrand::Rng::with_seed(3);
        let answers: Vec<_> = (0..3)
            .map(|_| {
                let d = decide(&mut table, "ModifySslVpnServer", &mut rng);
                let e = d.fault.error(d.retry_after_ms).unwrap();
                (e.status.as_u16(), e.code.into_owned(), e.retry_after_ms)
            })
            .collect();
        assert_eq!(
            answers,
            [
                (409, "OperationConflict".to_owned(), Some(2500)),
                (400, "Throttling.User".to_owned(), None),
                (400, "Throttling".to_owned(), None),
            ]
        );
        // By default only Throttling.User carries the header.
        let defaults = ActionFaults::default();
        for fault in [
            Fault::TaskConflict,
            Fault::VpnTaskConflict,
            Fault::IncorrectStatus,
            Fault::UnknownError,
            Fault::ThrottlingPlain,
        ] {
            assert_eq!(defaults.retry_after_of(fault), None, "{fault:?}");
        }
        assert_eq!(defaults.retry_after_of(Fault::Throttling), Some(1000));
    }
}
