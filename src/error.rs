//! The service's one error type and the one table that turns it into a gRPC
//! status with rich details (AIP-193).
//!
//! Every failure a caller can see is an [`Error`]: a small [`Class`] that
//! decides the gRPC code, the cloud's error code as `ErrorInfo.reason`, and
//! what helps the caller act on it (every field violation, the cloud's
//! RequestId, how long to wait). Lower layers keep their own error types and
//! convert into this one at the service boundary, so the mapping to gRPC
//! lives here alone.

use std::{collections::HashMap, fmt, time::Duration};

use tonic::Code;
use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::{
    cloud::{CloudError, CloudErrorClass},
    validate::Violations,
};

/// `ErrorInfo.domain` of every error: the cloud's, since reasons are its codes.
pub const ERROR_DOMAIN: &str = "vpc.aliyuncs.com";

/// What kind of failure, which alone decides the gRPC code.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    /// The request breaks a rule; fix it before retrying.
    InvalidArgument,
    /// The caller brought no credentials, or wrong ones.
    Unauthenticated,
    /// The server, gateway or region does not exist.
    NotFound,
    /// The cloud refused the gateway's credentials for this resource, or
    /// this service's policy refused the caller.
    PermissionDenied,
    /// The resource is not in a state that allows the change (busy, locked).
    FailedPrecondition,
    /// Lost a race with a concurrent change through this service.
    Aborted,
    /// Throttled, or a limit was reached.
    ResourceExhausted,
    /// The cloud could not be reached or failed transiently.
    Unavailable,
    /// The caller's deadline passed.
    DeadlineExceeded,
    /// The feature is not there (yet).
    Unimplemented,
    /// A bug or an answer from the cloud this service cannot understand.
    Internal,
    /// The cloud answered a code this service does not know.
    Unknown,
}

impl Class {
    /// The table: class → gRPC code.
    pub fn grpc_code(self) -> Code {
        match self {
            Class::InvalidArgument => Code::InvalidArgument,
            Class::Unauthenticated => Code::Unauthenticated,
            Class::NotFound => Code::NotFound,
            Class::PermissionDenied => Code::PermissionDenied,
            Class::FailedPrecondition => Code::FailedPrecondition,
            Class::Aborted => Code::Aborted,
            Class::ResourceExhausted => Code::ResourceExhausted,
            Class::Unavailable => Code::Unavailable,
            Class::DeadlineExceeded => Code::DeadlineExceeded,
            Class::Unimplemented => Code::Unimplemented,
            Class::Internal => Code::Internal,
            Class::Unknown => Code::Unknown,
        }
    }
}

/// A failure as the caller sees it. Boxed: it travels in every `Result`
/// of the request path, and most of those are `Ok`.
#[derive(Clone, Debug)]
pub struct Error(Box<Inner>);

#[derive(Clone, Debug)]
struct Inner {
    class: Class,
    /// The cloud's error code (or ours, in the cloud's style).
    reason: String,
    message: String,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    violations: Option<Violations>,
    metadata: Vec<(&'static str, String)>,
}

impl Error {
    pub fn new(class: Class, reason: impl Into<String>, message: impl Into<String>) -> Self {
        Self(Box::new(Inner {
            class,
            reason: reason.into(),
            message: message.into(),
            request_id: None,
            retry_after: None,
            violations: None,
            metadata: Vec::new(),
        }))
    }

    /// The cloud's RequestId, for support tickets.
    pub fn with_request_id(mut self, id: impl Into<String>) -> Self {
        let id = id.into();
        if !id.is_empty() {
            self.0.request_id = Some(id);
        }
        self
    }

    /// How long the caller should wait before retrying.
    pub fn with_retry_after(mut self, delay: Duration) -> Self {
        self.0.retry_after = Some(delay);
        self
    }

    /// An extra `ErrorInfo.metadata` entry (key in lowerCamelCase).
    pub fn with_metadata(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.0.metadata.push((key, value.into()));
        self
    }

    pub fn unimplemented(what: impl Into<String>) -> Self {
        Self::new(Class::Unimplemented, "Unimplemented", what)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(Class::Internal, "InternalError", message)
    }

    pub fn class(&self) -> Class {
        self.0.class
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

    pub fn retry_after(&self) -> Option<Duration> {
        self.0.retry_after
    }

    /// The `google.rpc.Status` for this error (for watch messages).
    pub fn to_rpc_status(&self) -> tonic_types::pb::Status {
        use prost::Message;
        let status = tonic::Status::from(self.clone());
        // tonic carries the whole google.rpc.Status, details included, as
        // the encoded `details` bytes.
        tonic_types::pb::Status::decode(status.details()).unwrap_or_else(|_| {
            tonic_types::pb::Status {
                code: status.code() as i32,
                message: status.message().to_owned(),
                details: Vec::new(),
            }
        })
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
        let mut error = Self::new(Class::InvalidArgument, first.code.clone(), message);
        error.0.violations = Some(violations);
        error
    }
}

/// How long to suggest waiting when the cloud throttled us without saying.
const THROTTLED_RETRY_AFTER: Duration = Duration::from_secs(1);
/// How long to suggest waiting while a gateway applies a change (Terraform
/// waits 10 s between attempts on `VpnGateway.Configuring`).
const GATEWAY_BUSY_RETRY_AFTER: Duration = Duration::from_secs(10);

impl From<CloudError> for Error {
    /// The table for the cloud's failures: its error class decides ours; its
    /// code stays the reason and its RequestId travels along.
    fn from(err: CloudError) -> Self {
        let (class, retry_after) = match err.class() {
            CloudErrorClass::NotFound => (Class::NotFound, None),
            CloudErrorClass::Forbidden => (Class::PermissionDenied, None),
            CloudErrorClass::Throttled => (
                Class::ResourceExhausted,
                Some(err.retry_after().unwrap_or(THROTTLED_RETRY_AFTER)),
            ),
            CloudErrorClass::GatewayBusy => (
                Class::FailedPrecondition,
                Some(err.retry_after().unwrap_or(GATEWAY_BUSY_RETRY_AFTER)),
            ),
            CloudErrorClass::Transient => (Class::Unavailable, err.retry_after()),
            CloudErrorClass::Conflict | CloudErrorClass::Locked => {
                (Class::FailedPrecondition, None)
            }
            CloudErrorClass::BadParameter => (Class::InvalidArgument, None),
            CloudErrorClass::DeadlineExceeded => (Class::DeadlineExceeded, None),
            // The gateway's own credentials were refused or missing: an
            // operator must act; the caller's retry cannot help.
            CloudErrorClass::Credentials => (Class::Internal, None),
            CloudErrorClass::Unknown => (Class::Unknown, None),
        };
        let mut error = Error::new(class, err.code(), err.message().to_owned());
        if let Some(id) = err.request_id() {
            error = error.with_request_id(id);
        }
        if let Some(status) = err.http_status() {
            error = error.with_metadata("httpStatus", status.to_string());
        }
        match retry_after {
            Some(delay) => error.with_retry_after(delay),
            None => error,
        }
    }
}

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata: HashMap<String, String> = err
            .0
            .metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        if let Some(id) = &err.0.request_id {
            metadata.insert("requestId".into(), id.clone());
            details.set_request_info(id.clone(), String::new());
        }
        if let Some(violations) = &err.0.violations {
            let mut codes: Vec<&str> = violations
                .as_slice()
                .iter()
                .map(|v| v.code.as_str())
                .collect();
            codes.dedup();
            metadata.insert("codes".into(), codes.join(","));
            details.set_bad_request(
                violations
                    .as_slice()
                    .iter()
                    .map(|v| FieldViolation {
                        field: v.field.proto_name().to_owned(),
                        description: format!("{} ({})", v.description, v.code),
                        reason: v.code.clone(),
                        localized_message: None,
                    })
                    .collect::<Vec<_>>(),
            );
        }
        if let Some(delay) = err.0.retry_after {
            details.set_retry_info(Some(delay));
        }
        details.set_error_info(err.0.reason.clone(), ERROR_DOMAIN, metadata);
        tonic::Status::with_error_details(err.0.class.grpc_code(), err.0.message, details)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::validate::{self, ModifyInput};

    #[test]
    fn violations_become_invalid_argument_with_every_field() {
        let violations = validate::modification(&ModifyInput {
            region_id: "cn-hangzhou",
            ssl_vpn_server_id: "vss-abc",
            port: Some(0),
            name: Some("http://x"),
            ..ModifyInput::default()
        })
        .unwrap_err();
        let status = tonic::Status::from(Error::from(violations));
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(info.reason, "InvalidName");
        assert_eq!(info.domain, ERROR_DOMAIN);
        let fields: Vec<_> = details
            .bad_request()
            .expect("BadRequest")
            .field_violations
            .iter()
            .map(|v| (v.field.as_str(), v.reason.as_str()))
            .collect();
        assert_eq!(
            fields,
            vec![
                ("name", "InvalidName"),
                ("port", "SslVpnServerPort.Illegal")
            ]
        );
    }

    #[test]
    fn retry_after_and_request_id_travel_in_details() {
        let status = tonic::Status::from(
            Error::new(Class::FailedPrecondition, "VpnGateway.Configuring", "busy")
                .with_retry_after(Duration::from_secs(10))
                .with_request_id("REQ-1"),
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_secs(10))
        );
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("requestId").map(String::as_str),
            Some("REQ-1")
        );
    }

    #[test]
    fn rpc_status_keeps_code_and_details() {
        let rpc =
            Error::new(Class::NotFound, "InvalidSslVpnServerId.NotFound", "gone").to_rpc_status();
        assert_eq!(rpc.code, Code::NotFound as i32);
        assert_eq!(rpc.details.len(), 1);
        assert!(rpc.details[0].type_url.ends_with("google.rpc.ErrorInfo"));
    }
}
