//! The one place an [`Error`] becomes a gRPC status: the kind's code, the
//! reason and metadata as `google.rpc.ErrorInfo` (always with `origin`:
//! `cloud` or `gateway`, who decided it), every field violation as
//! `BadRequest`, the RequestId as `RequestInfo`, the wait as `RetryInfo`
//! (AIP-193). Everything above the service (access, the transport) returns
//! errors through this same conversion.

use std::collections::HashMap;

use tonic_types::{ErrorDetails, FieldViolation, StatusExt};

use crate::error::Error;

/// `ErrorInfo.domain` of every error: the cloud's, since reasons are its codes.
pub const ERROR_DOMAIN: &str = "vpc.aliyuncs.com";

impl From<Error> for tonic::Status {
    fn from(err: Error) -> Self {
        let mut details = ErrorDetails::new();
        let mut metadata: HashMap<String, String> = err
            .metadata()
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        metadata.insert("origin".into(), err.origin().as_str().to_owned());
        if let Some(id) = err.request_id() {
            metadata.insert("requestId".into(), id.to_owned());
            details.set_request_info(id.to_owned(), String::new());
        }
        if let Some(violations) = err.violations() {
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
        if let Some(delay) = err.retry_after() {
            details.set_retry_info(Some(delay));
        }
        details.set_error_info(err.reason().to_owned(), ERROR_DOMAIN, metadata);
        tonic::Status::with_error_details(err.kind().grpc_code(), err.message(), details)
    }
}

/// The `google.rpc.Status` for an error carried inside a message (a watch
/// ending FAILED).
pub fn rpc_status(err: &Error) -> tonic_types::pb::Status {
    use prost::Message;
    let status = tonic::Status::from(err.clone());
    // tonic carries the whole google.rpc.Status, details included, as the
    // encoded `details` bytes.
    tonic_types::pb::Status::decode(status.details()).unwrap_or_else(|_| tonic_types::pb::Status {
        code: status.code() as i32,
        message: status.message().to_owned(),
        details: Vec::new(),
    })
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use tonic::Code;

    use super::*;
    use crate::{
        error::Kind,
        validate::{self, ModifyInput},
    };

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
        assert!(details.retry_info().is_none(), "fixing, not waiting, helps");
        assert_eq!(
            info.metadata.get("origin").map(String::as_str),
            Some("gateway"),
            "the gateway's own rules decided"
        );
    }

    #[test]
    fn origin_says_whether_the_cloud_answered() {
        use crate::cloud::CloudError;
        let origin = |err: Error| {
            tonic::Status::from(err)
                .get_error_details()
                .error_info()
                .and_then(|i| i.metadata.get("origin").cloned())
        };
        let answered = CloudError::from_response(
            400,
            None,
            br#"{"RequestId":"R","Code":"IpConflict","Message":"m"}"#,
        );
        assert_eq!(origin(answered.into()).as_deref(), Some("cloud"));
        // A status whose body names no code, a transport failure, an
        // answer we synthesise: our codes, so ours.
        let bare = CloudError::from_response(502, None, b"<html>bad gateway</html>");
        assert_eq!(origin(bare.into()).as_deref(), Some("gateway"));
        let timeout = CloudError::new(Kind::Unavailable, "Transport.Timeout", "t");
        assert_eq!(origin(timeout.into()).as_deref(), Some("gateway"));
        let busy = Error::new(Kind::Busy, "VpnGateway.Configuring", "in flight here");
        assert_eq!(origin(busy).as_deref(), Some("gateway"));
    }

    #[test]
    fn retry_after_and_request_id_travel_in_details() {
        let status = tonic::Status::from(
            Error::new(Kind::Busy, "VpnGateway.Configuring", "busy")
                .with_retry_after(Duration::from_secs(7))
                .with_request_id("REQ-1"),
        );
        assert_eq!(status.code(), Code::FailedPrecondition);
        let details = status.get_error_details();
        assert_eq!(
            details.retry_info().and_then(|r| r.retry_delay),
            Some(Duration::from_secs(7))
        );
        let info = details.error_info().expect("ErrorInfo");
        assert_eq!(
            info.metadata.get("requestId").map(String::as_str),
            Some("REQ-1")
        );
    }

    #[test]
    fn a_kinds_hint_is_the_retry_info_when_nobody_named_one() {
        let status = tonic::Status::from(Error::new(Kind::Busy, "VpnGateway.Configuring", "b"));
        assert_eq!(
            status
                .get_error_details()
                .retry_info()
                .and_then(|r| r.retry_delay),
            Kind::Busy.retry_hint()
        );
    }

    #[test]
    fn rpc_status_keeps_code_and_details() {
        let rpc = rpc_status(&Error::new(
            Kind::NotFound,
            "InvalidSslVpnServerId.NotFound",
            "gone",
        ));
        assert_eq!(rpc.code, Code::NotFound as i32);
        assert_eq!(rpc.details.len(), 1);
        assert!(rpc.details[0].type_url.ends_with("google.rpc.ErrorInfo"));
    }
}
