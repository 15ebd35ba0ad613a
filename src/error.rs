//! The one error vocabulary: a deliberately small set of [`Kind`]s that
//! every failure is sorted into once — the cloud's codes in
//! `cloud::error::classify`, our own refusals where they are made — and
//! the methods that read everything else off the kind: its gRPC code, its
//! metric label, its audit outcome and its retry hint.
//!
//! Every failure a caller can see is an [`Error`]: a kind, the cloud's error
//! code as the reason (`ErrorInfo.reason`), and what helps the caller act on
//! it (every field violation, the cloud's RequestId, how long to wait).
//! The cloud client's own error converts into it (in `cloud`) keeping its kind; the
//! service turns it into a gRPC status with rich details (AIP-193) in one
//! place, `service::status`.
//!
//! Every error also says who decided it ([`Origin`]): the cloud, when its
//! answer is passed on, or this gateway, when one of its own checks refused
//! or it failed by itself. The reasons look alike (the gateway answers with
//! the cloud's documented codes, and invents `InvalidParameter.<Field>` or
//! `MissingParameter` in the cloud's style where the document names none),
//! so a caller could not tell them apart otherwise. The origin is set where
//! the error is made: cloud answers in `cloud`, everything else is the
//! gateway's.

use std::{fmt, time::Duration};

use tonic::Code;

use crate::validate::Violations;

/// What kind of failure: the one classification, from which the gRPC code,
/// the metric label, the audit outcome and the retry hint all follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Kind {
    /// The request breaks a rule (ours or the cloud's); fix it first.
    InvalidArgument,
    /// The caller brought no credentials, or wrong ones.
    Unauthenticated,
    /// This service's policy refused the caller, or the cloud refused the
    /// gateway's principal (RAM).
    PermissionDenied,
    /// The server, gateway or region does not exist.
    NotFound,
    /// The VPN gateway is applying an earlier change.
    Busy,
    /// The gateway or account is locked (overdue payment).
    Locked,
    /// The change conflicts with the resource's state (IP ranges, a reused
    /// token, a gateway being deleted).
    Conflict,
    /// Lost a race with a concurrent change sent through this service.
    Raced,
    /// Flow control: the cloud throttled us, or the caller's request rate.
    Throttled,
    /// A capacity of this service is used up (streams, pollers).
    Exhausted,
    /// The cloud could not be reached or failed transiently.
    Unavailable,
    /// The caller's deadline passed.
    DeadlineExceeded,
    /// The gateway's own cloud credentials are missing or were refused: an
    /// operator must act, the caller's retry cannot help.
    Credentials,
    /// A bug of this service.
    Internal,
    /// The cloud answered a code this service does not know, or an answer
    /// it cannot read.
    Unknown,
}

/// Who decided a failure: `ErrorInfo.metadata["origin"]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Origin {
    /// The cloud answered it (its code, passed on).
    Cloud,
    /// This gateway: a rule or pre-flight check of its own, its access
    /// control, its limits, or a failure that never reached the cloud.
    Gateway,
}

impl Origin {
    pub fn as_str(self) -> &'static str {
        match self {
            Origin::Cloud => "cloud",
            Origin::Gateway => "gateway",
        }
    }
}

/// A top-up takes minutes, not seconds.
const LOCKED_RETRY_AFTER: Duration = Duration::from_secs(300);
/// Terraform's provider waits 10 s between attempts on a configuring gateway.
const BUSY_RETRY_AFTER: Duration = Duration::from_secs(10);
/// A lost race ends as soon as the winner's call returns.
const RACED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Throttling that names no wait of its own.
const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// Streams and pollers free up as watches end.
const EXHAUSTED_RETRY_AFTER: Duration = Duration::from_secs(5);

impl Kind {
    /// The gRPC status code.
    pub fn grpc_code(self) -> Code {
        match self {
            Kind::InvalidArgument => Code::InvalidArgument,
            Kind::Unauthenticated => Code::Unauthenticated,
            Kind::PermissionDenied => Code::PermissionDenied,
            Kind::NotFound => Code::NotFound,
            Kind::Busy | Kind::Locked | Kind::Conflict => Code::FailedPrecondition,
            Kind::Raced => Code::Aborted,
            Kind::Throttled | Kind::Exhausted => Code::ResourceExhausted,
            Kind::Unavailable => Code::Unavailable,
            Kind::DeadlineExceeded => Code::DeadlineExceeded,
            Kind::Credentials | Kind::Internal => Code::Internal,
            Kind::Unknown => Code::Unknown,
        }
    }

    /// The `outcome` label of `sslvpn_upstream_requests_total`.
    pub fn metric_label(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "bad_parameter",
            Kind::Unauthenticated => "unauthenticated",
            Kind::PermissionDenied => "forbidden",
            Kind::NotFound => "not_found",
            Kind::Busy => "gateway_busy",
            Kind::Locked => "locked",
            Kind::Conflict => "conflict",
            Kind::Raced => "raced",
            Kind::Throttled => "throttled",
            Kind::Exhausted => "exhausted",
            Kind::Unavailable => "transient",
            Kind::DeadlineExceeded => "deadline_exceeded",
            Kind::Credentials => "credentials",
            Kind::Internal => "internal",
            Kind::Unknown => "unknown",
        }
    }

    /// The audit log's `outcome` (and `sslvpn_modifications_total`'s
    /// `result`) of a refused or failed modify.
    pub fn audit_outcome(self) -> &'static str {
        match self {
            Kind::InvalidArgument => "invalid",
            Kind::NotFound => "not_found",
            Kind::Busy | Kind::Locked | Kind::Conflict | Kind::Raced => "rejected",
            Kind::Unauthenticated
            | Kind::PermissionDenied
            | Kind::Throttled
            | Kind::Exhausted
            | Kind::Unavailable
            | Kind::DeadlineExceeded
            | Kind::Credentials
            | Kind::Internal
            | Kind::Unknown => "failed",
        }
    }

    /// How long to suggest waiting before a retry, when waiting helps and
    /// nobody named a better figure (the cloud's `x-acs-retry-after`, a
    /// rate limiter's own wait).
    pub fn retry_hint(self) -> Option<Duration> {
        match self {
            Kind::Busy => Some(BUSY_RETRY_AFTER),
            Kind::Locked => Some(LOCKED_RETRY_AFTER),
            Kind::Raced => Some(RACED_RETRY_AFTER),
            Kind::Throttled => Some(THROTTLED_RETRY_AFTER),
            Kind::Exhausted => Some(EXHAUSTED_RETRY_AFTER),
            _ => None,
        }
    }

    /// Whether the cloud client retries a call that failed so.
    pub fn is_retryable(self) -> bool {
        matches!(self, Kind::Unavailable | Kind::Throttled)
    }

    /// Whether no later poll can mend it: a watch of the gateway fails
    /// instead of waiting (the rest keep the last state and the streams).
    pub fn ends_watch(self) -> bool {
        matches!(self, Kind::NotFound | Kind::PermissionDenied | Kind::Locked)
    }
}

/// A failure as the caller sees it. Boxed: it travels in every `Result`
/// of the request path, and most of those are `Ok`.
#[derive(Clone, Debug)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    kind: Kind,
    origin: Origin,
    /// The cloud's error code (or ours, in the cloud's style).
    reason: String,
    message: String,
    request_id: Option<String>,
    /// A wait someone named (the cloud, a rate limiter); else the kind's hint.
    retry_after: Option<Duration>,
    violations: Option<Violations>,
    metadata: Vec<(&'static str, String)>,
}

impl Error {
    pub fn new(kind: Kind, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            kind,
            origin: Origin::Gateway,
            reason: reason.into(),
            message: message.into(),
            request_id: None,
            retry_after: None,
            violations: None,
            metadata: Vec::new(),
        }))
    }

    /// Marks the error as the cloud's answer (errors are the gateway's
    /// unless said so).
    pub fn answered_by_cloud(mut self) -> Self {
        self.0.origin = Origin::Cloud;
        self
    }

    /// The cloud's RequestId, for support tickets.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.0.request_id = Some(id);
        }
        self
    }

    /// A wait better than the kind's hint (a rate limiter's own figure).
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.0.retry_after = Some(delay);
        self
    }

    /// An extra `ErrorInfo.metadata` entry (key in lowerCamelCase).
    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.0.metadata.push((key, value.into()));
        self
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Kind::Internal, "InternalError", message)
    }

    pub fn kind(&self) -> Kind {
        self.0.kind
    }

    /// Who decided it.
    pub fn origin(&self) -> Origin {
        self.0.origin
    }

    pub fn reason(&self) -> &str {
        &self.0.reason
    }

    pub fn message(&self) -> &str {
        &self.0.message
    }

    /// The cloud's RequestId, when the cloud answered.
    pub fn request_id(&self) -> Option<&str> {
        self.0.request_id.as_deref()
    }

    /// How long the caller should wait before retrying, if waiting helps.
    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after.or_else(|| self.0.kind.retry_hint())
    }

    /// Every field violation, for a request that broke rules.
    pub fn violations(&self) -> Option<&Violations> {
        self.0.violations.as_ref()
    }

    /// The `ErrorInfo.metadata` entries added along the way.
    pub fn metadata(&self) -> &[(&'static str, String)] {
        &self.0.metadata
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.0.message, self.0.reason)
    }
}

impl std::error::Error for Error {}

impl From<Violations> for Error {
    fn from(violations: Violations) -> Self {
        let first = violations.first();
        let count = violations.as_slice().len();
        let message = if count == 1 {
            format!("invalid request: {first}")
        } else {
            format!("invalid request, {count} violations: {violations}")
        };
        let mut error = Self::new(Kind::InvalidArgument, first.code.clone(), message);
        error.0.violations = Some(violations);
        error
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_one_code_label_outcome_and_hint() {
        let kinds = [
            Kind::InvalidArgument,
            Kind::Unauthenticated,
            Kind::PermissionDenied,
            Kind::NotFound,
            Kind::Busy,
            Kind::Locked,
            Kind::Conflict,
            Kind::Raced,
            Kind::Throttled,
            Kind::Exhausted,
            Kind::Unavailable,
            Kind::DeadlineExceeded,
            Kind::Credentials,
            Kind::Internal,
            Kind::Unknown,
        ];
        let labels: std::collections::HashSet<_> = kinds.iter().map(|k| k.metric_label()).collect();
        assert_eq!(labels.len(), kinds.len(), "one label per kind");
        // Waiting helps exactly where a hint is given.
        for k in kinds {
            let waits = matches!(
                k,
                Kind::Busy | Kind::Locked | Kind::Raced | Kind::Throttled | Kind::Exhausted
            );
            assert_eq!(k.retry_hint().is_some(), waits, "{k:?}");
        }
        assert_eq!(Kind::Busy.grpc_code(), Code::FailedPrecondition);
        assert_eq!(Kind::Raced.grpc_code(), Code::Aborted);
        assert_eq!(Kind::Credentials.grpc_code(), Code::Internal);
        assert_eq!(Kind::Raced.audit_outcome(), "rejected");
    }

    #[test]
    fn a_named_wait_beats_the_kinds_hint() {
        let busy = Error::new(Kind::Busy, "VpnGateway.Configuring", "busy");
        assert_eq!(busy.retry_after(), Some(BUSY_RETRY_AFTER));
        let told = busy.with_retry_after(Duration::from_secs(3));
        assert_eq!(told.retry_after(), Some(Duration::from_secs(3)));
        assert_eq!(Error::internal("x").retry_after(), None);
    }
}
