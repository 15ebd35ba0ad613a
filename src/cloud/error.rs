//! The cloud client's one error type, and the one place the cloud's error
//! codes are sorted into the service's [`Kind`]s.
//!
//! The cloud answers a failure with a 4xx/5xx and a JSON body
//! (`RequestId`, `HostId`, `Code`, `Message`, `Recommend`, and
//! `AccessDeniedDetail` for RAM denials). Its own tables give different HTTP
//! statuses for the same code, so the class is decided by the code first and
//! the status only when the code is unknown. Failures that never reached the
//! cloud (connect errors, timeouts, credentials, configuration) get a code of
//! our own in the cloud's dotted style, so every error has one.

use std::{fmt, time::Duration};

use serde_json::Value;

use super::percent::percent_encode;
use crate::error::{Error, Kind};

/// The cloud's answer to a `DryRun` whose checks all passed: an error
/// status that means success (the SDK's `ModifySslVpnServerRequest.dry_run`).
pub const DRY_RUN_OPERATION: &str = "DryRunOperation";

/// Codes of our own, for failures the cloud did not answer.
pub mod code {
    pub const CONNECT_FAILED: &str = "Transport.ConnectFailed";
    pub const TIMEOUT: &str = "Transport.Timeout";
    pub const TRANSPORT: &str = "Transport.Error";
    pub const DEADLINE_EXCEEDED: &str = "DeadlineExceeded";
    pub const INVALID_CREDENTIALS: &str = "InvalidCredentials";
    pub const INVALID_CONFIG: &str = "InvalidConfig";
    pub const INVALID_RESPONSE: &str = "InvalidResponse";
    /// An error status whose body names no code.
    pub const HTTP_ERROR: &str = "HttpError";
    /// This gateway's share of the account's quota is spent for now.
    pub const BUDGET_EXHAUSTED: &str = "Throttling.UpstreamBudget";
}

/// A failed cloud call. Carries the cloud's code and RequestId whenever the
/// cloud sent them; holds no credentials (messages are scrubbed of the
/// AccessKeyId and token before an error leaves the client).
#[derive(Clone)]
pub struct CloudError {
    inner: Box<Inner>,
}

#[derive(Clone, Debug)]
struct Inner {
    kind: Kind,
    code: String,
    message: String,
    request_id: Option<String>,
    host_id: Option<String>,
    recommend: Option<String>,
    access_denied_detail: Option<Value>,
    http_status: Option<u16>,
    retry_after: Option<Duration>,
    attempts: u32,
    /// The cloud's own answer, code and all (not one of ours).
    answered: bool,
}

impl CloudError {
    /// An error of our own making.
    pub fn new(kind: Kind, code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            inner: Box::new(Inner {
                kind,
                code: code.into(),
                message: message.into(),
                request_id: None,
                host_id: None,
                recommend: None,
                access_denied_detail: None,
                http_status: None,
                retry_after: None,
                attempts: 0,
                answered: false,
            }),
        }
    }

    pub fn credentials(message: impl Into<String>) -> Self {
        Self::new(Kind::Credentials, code::INVALID_CREDENTIALS, message)
    }

    pub fn config(message: impl Into<String>) -> Self {
        Self::new(Kind::InvalidArgument, code::INVALID_CONFIG, message)
    }

    pub fn deadline_exceeded(message: impl Into<String>) -> Self {
        Self::new(Kind::DeadlineExceeded, code::DEADLINE_EXCEEDED, message)
    }

    /// A 2xx answer this client could not read.
    pub fn invalid_response(message: impl Into<String>, request_id: Option<String>) -> Self {
        let mut err = Self::new(Kind::Unknown, code::INVALID_RESPONSE, message);
        err.inner.request_id = request_id.filter(|id| !id.is_empty());
        err
    }

    /// Decodes an error answer: the JSON body when there is one, the XML
    /// `<Error>` variant, else the status and a snippet of whatever came.
    pub fn from_response(status: u16, retry_after: Option<Duration>, body: &[u8]) -> Self {
        let text = String::from_utf8_lossy(body);
        let fields = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(map)) => Some(from_json(&map)),
            _ => from_xml(&text),
        };
        // A body with a request id but no code still tells which request
        // failed: that id survives into the fallback below.
        let stray_request_id = fields.as_ref().and_then(|f| f.request_id.clone());
        let fields = fields.filter(|f| !f.code.is_empty());
        let mut err = match fields {
            Some(f) => {
                let class = classify(&f.code, Some(status), retry_after);
                let mut err = Self::new(class, f.code, f.message);
                err.inner.answered = true;
                err.inner.request_id = f.request_id;
                err.inner.host_id = f.host_id;
                err.inner.recommend = f.recommend;
                err.inner.access_denied_detail = f.access_denied_detail;
                err
            }
            None => {
                let class = classify_status(status, retry_after);
                let snippet = snippet(&text);
                let reason = http::StatusCode::from_u16(status)
                    .ok()
                    .and_then(|s| s.canonical_reason())
                    .unwrap_or("");
                let message = if snippet.is_empty() {
                    format!("HTTP {status} {reason} with an empty body")
                } else {
                    format!("HTTP {status} {reason}: {snippet}")
                };
                let mut err = Self::new(class, code::HTTP_ERROR, message);
                err.inner.request_id = stray_request_id.filter(|id| !id.is_empty());
                err
            }
        };
        err.inner.http_status = Some(status);
        err.inner.retry_after = retry_after;
        err
    }

    /// The cloud's error code (`VpnGateway.Configuring`, ...) or ours
    /// (`Transport.Timeout`, ...).
    pub fn code(&self) -> &str {
        &self.inner.code
    }

    pub fn message(&self) -> &str {
        &self.inner.message
    }

    /// The cloud's RequestId, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        self.inner.request_id.as_deref()
    }

    pub fn http_status(&self) -> Option<u16> {
        self.inner.http_status
    }

    /// The cloud's `x-acs-retry-after`, when it sent one.
    pub fn retry_after(&self) -> Option<Duration> {
        self.inner.retry_after
    }

    pub fn kind(&self) -> Kind {
        self.inner.kind
    }

    /// Whether the cloud answered with a code of its own; false for our
    /// codes (transport, credentials, a status whose body named no code).
    pub fn is_cloud_answer(&self) -> bool {
        self.inner.answered
    }

    pub fn host_id(&self) -> Option<&str> {
        self.inner.host_id.as_deref()
    }

    /// The cloud's troubleshooting link.
    pub fn recommend(&self) -> Option<&str> {
        self.inner.recommend.as_deref()
    }

    /// The RAM denial details (`AuthAction`, `EncodedDiagnosticMessage`...).
    pub fn access_denied_detail(&self) -> Option<&Value> {
        self.inner.access_denied_detail.as_ref()
    }

    /// How many requests the call sent before giving up (0: none).
    pub fn attempts(&self) -> u32 {
        self.inner.attempts
    }

    pub fn is_retryable(&self) -> bool {
        self.inner.kind.is_retryable()
    }

    pub(crate) fn with_retry_after(mut self, wait: Duration) -> Self {
        self.inner.retry_after = Some(wait);
        self
    }

    pub(crate) fn with_attempts(mut self, attempts: u32) -> Self {
        self.inner.attempts = attempts;
        self
    }

    pub(crate) fn with_request_id(mut self, request_id: Option<String>) -> Self {
        if let Some(id) = request_id.filter(|id| !id.is_empty()) {
            self.inner.request_id = Some(id);
        }
        self
    }

    /// Removes `secrets` from the message and the access-denied details. The
    /// cloud echoes its string-to-sign in `SignatureDoesNotMatch`, and the
    /// legacy one holds the AccessKeyId and the token, encoded once or twice.
    pub(crate) fn redact(mut self, secrets: &[&str]) -> Self {
        let inner = &mut *self.inner;
        for secret in secrets.iter().filter(|s| s.len() >= 4) {
            let once = percent_encode(secret);
            let twice = percent_encode(&once);
            for form in [twice.as_str(), once.as_str(), secret] {
                if inner.message.contains(form) {
                    inner.message = inner.message.replace(form, "***");
                }
                if let Some(detail) = &inner.access_denied_detail {
                    let text = detail.to_string();
                    if text.contains(form) {
                        inner.access_denied_detail =
                            serde_json::from_str(&text.replace(form, "***")).ok();
                    }
                }
            }
        }
        self
    }
}

impl fmt::Debug for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.fmt(f)
    }
}

impl fmt::Display for CloudError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.inner.code, self.inner.message)?;
        match (self.inner.http_status, &self.inner.request_id) {
            (Some(status), Some(id)) => write!(f, " (HTTP {status}, RequestId {id})"),
            (Some(status), None) => write!(f, " (HTTP {status})"),
            (None, Some(id)) => write!(f, " (RequestId {id})"),
            (None, None) => Ok(()),
        }
    }
}

impl std::error::Error for CloudError {}

impl From<CloudError> for Error {
    /// The cloud's failures keep the kind they were classified as; the
    /// cloud's code stays the reason, and its RequestId and retry-after
    /// travel along. Only a code the cloud sent makes it the cloud's answer.
    fn from(err: CloudError) -> Self {
        let mut error = Error::new(err.kind(), err.code(), err.message().to_owned());
        if err.is_cloud_answer() {
            error = error.answered_by_cloud();
        }
        if let Some(id) = err.request_id() {
            error = error.with_request_id(id);
        }
        if let Some(status) = err.http_status() {
            error = error.with_metadata("httpStatus", status.to_string());
        }
        match err.retry_after() {
            Some(delay) => error.with_retry_after(delay),
            None => error,
        }
    }
}

/// Sorts a cloud error code into a class. `status` and `retry_after` only
/// decide for codes the table does not know.
pub fn classify(code: &str, status: Option<u16>, retry_after: Option<Duration>) -> Kind {
    let exact = |list: &[&str]| list.contains(&code);
    let class = if code.starts_with("Throttling") || code.contains(".Throttling") {
        Some(Kind::Throttled)
    } else if exact(&[
        "VpnGateway.Configuring",
        "OperationConflict",
        "TaskConflict",
        "VpnTask.CONFLICT",
        "LastTokenProcessing",
    ]) || code.starts_with("IncorrectStatus")
        // Appliance.Configuring, VpnConnection.Configuring, ...: the same
        // gateway busy with another part of its configuration.
        || code.ends_with(".Configuring")
    {
        Some(Kind::Busy)
    } else if exact(&[
        "ServiceUnavailable",
        "InternalError",
        "UnknownError",
        "SystemBusy",
        "ServiceBusy",
        "SignatureNonceUsed",
        code::CONNECT_FAILED,
        code::TIMEOUT,
        code::TRANSPORT,
    ]) {
        Some(Kind::Unavailable)
    } else if exact(&[
        "SignatureDoesNotMatch",
        "IncompleteSignature",
        "InvalidAccessKeySecret",
        "InvalidTimeStamp.Expired",
        code::INVALID_CREDENTIALS,
    ]) || code.starts_with("InvalidAccessKeyId")
        || code.starts_with("InvalidSecurityToken")
    {
        Some(Kind::Credentials)
    } else if code.contains("FinancialLocked") || code.ends_with("Locked") {
        Some(Kind::Locked)
    } else if code == "Forbidden"
        || code.starts_with("Forbidden.")
        || code.starts_with("Forbbiden.") // sic: the API documents this spelling
        || code.contains("NoPermission")
        || code.contains("NoRamPermission")
    {
        Some(Kind::PermissionDenied)
    } else if code == "InvalidApi.NotFound" {
        // Our bug (wrong action or version), not a missing resource.
        Some(Kind::Unknown)
    } else if code.ends_with(".NotFound") {
        Some(Kind::NotFound)
    } else if exact(&["IdempotentParameterMismatch", "IpConflict"])
        || code.contains("Conflict")
        || code.starts_with("EnableHaCheck.")
    {
        Some(Kind::Conflict)
    } else if code.starts_with("Invalid")
        || code.starts_with("Missing")
        || code.starts_with("IllegalParam")
        || code.starts_with("UnsupportedParameter")
        || code.starts_with("OperationUnsupported")
        || code.ends_with(".Illegal")
        || code.ends_with("Invalid")
        || code == code::INVALID_CONFIG
    {
        Some(Kind::InvalidArgument)
    } else if code == code::DEADLINE_EXCEEDED {
        Some(Kind::DeadlineExceeded)
    } else {
        None
    };
    match (class, status) {
        (Some(class), _) => class,
        (None, Some(status)) => classify_status(status, retry_after),
        (None, None) if retry_after.is_some() => Kind::Throttled,
        (None, None) => Kind::Unknown,
    }
}

/// The fallback when no known code decides: a retry-after header means
/// throttling (as the SDK reads it), then the status.
fn classify_status(status: u16, retry_after: Option<Duration>) -> Kind {
    match status {
        _ if retry_after.is_some() => Kind::Throttled,
        429 => Kind::Throttled,
        500..=599 => Kind::Unavailable,
        403 => Kind::PermissionDenied,
        // A 404 without a cloud code is a wrong endpoint or a proxy's page,
        // not the cloud saying a resource is gone (which would end watches
        // as FAILED): the cloud's own not-found answers carry a code.
        _ => Kind::Unknown,
    }
}

struct Fields {
    code: String,
    message: String,
    request_id: Option<String>,
    host_id: Option<String>,
    recommend: Option<String>,
    access_denied_detail: Option<Value>,
}

/// Reads the body's fields, accepting the lowerCamel spellings the SDK also
/// tries.
fn from_json(map: &serde_json::Map<String, Value>) -> Fields {
    let text = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| match map.get(*n) {
            Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
            Some(Value::Number(n)) => Some(n.to_string()),
            _ => None,
        })
    };
    Fields {
        code: text(&["Code", "code"]).unwrap_or_default(),
        message: text(&["Message", "message"]).unwrap_or_default(),
        request_id: text(&["RequestId", "requestId"]),
        host_id: text(&["HostId", "hostId"]),
        recommend: text(&["Recommend", "recommend"]),
        access_denied_detail: ["AccessDeniedDetail", "accessDeniedDetail"]
            .iter()
            .find_map(|n| map.get(*n).filter(|v| !v.is_null()).cloned()),
    }
}

/// The XML variant `<Error><RequestId/><HostId/><Code/><Message/></Error>`.
fn from_xml(text: &str) -> Option<Fields> {
    let tag = |name: &str| -> Option<String> {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = text.find(&open)? + open.len();
        let len = text.get(start..)?.find(&close)?;
        text.get(start..start + len)
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    if !text.contains("<Error") {
        return None;
    }
    Some(Fields {
        code: tag("Code")?,
        message: tag("Message").unwrap_or_default(),
        request_id: tag("RequestId"),
        host_id: tag("HostId"),
        recommend: tag("Recommend"),
        access_denied_detail: None,
    })
}

/// The start of an unreadable body, on one line, for the error message.
fn snippet(text: &str) -> String {
    const MAX_CHARS: usize = 200;
    let one_line: String = text
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
        .chars()
        .filter(|c| !c.is_control())
        .collect();
    if one_line.chars().count() > MAX_CHARS {
        let cut: String = one_line.chars().take(MAX_CHARS).collect();
        format!("{cut}…")
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::Kind::*;

    #[test]
    fn codes_decide_before_statuses() {
        let cases = [
            ("Throttling.User", 400, Throttled),
            ("Throttling", 400, Throttled),
            ("Rejected.Throttling", 400, Throttled),
            ("VpnGateway.Configuring", 400, Busy),
            ("VpnConnection.Configuring", 400, Busy),
            ("Appliance.Configuring", 400, Busy),
            ("ServiceUnavailable", 503, Unavailable),
            ("InternalError", 500, Unavailable),
            ("SystemBusy", 400, Unavailable),
            ("InvalidSslVpnServerId.NotFound", 400, NotFound),
            ("InvalidRegionId.NotFound", 404, NotFound),
            ("InvalidAccessKeyId.NotFound", 404, Credentials),
            ("InvalidSecurityToken.Expired", 400, Credentials),
            ("SignatureDoesNotMatch", 400, Credentials),
            ("Forbidden.RAM", 403, PermissionDenied),
            ("Forbbiden.SubUser", 403, PermissionDenied),
            ("OperationFailed.NoRamPermission", 400, PermissionDenied),
            ("IpConflict", 400, Conflict),
            ("IdempotentParameterMismatch", 400, Conflict),
            ("VpnRouteEntry.Conflict", 400, Conflict),
            ("VpnGateway.FinancialLocked", 400, Locked),
            ("InvalidName", 400, InvalidArgument),
            ("ClientIpPool.NetmaskInvalid", 400, InvalidArgument),
            ("SslVpnServerPort.Illegal", 400, InvalidArgument),
            ("MissingParam.IDaaSRegionId", 400, InvalidArgument),
            ("InvalidApi.NotFound", 404, Unknown),
            ("SomethingNew", 400, Unknown),
            ("SomethingNew", 502, Unavailable),
            ("SomethingNew", 403, PermissionDenied),
            ("SomethingNew", 404, Unknown),
        ];
        for (code, status, class) in cases {
            assert_eq!(classify(code, Some(status), None), class, "{code} {status}");
        }
        assert_eq!(
            classify("SomethingNew", Some(400), Some(Duration::from_millis(5))),
            Throttled
        );
    }

    #[test]
    fn json_bodies_decode_with_every_field() {
        let body = br#"{"RequestId":"R-1","HostId":"vpc.aliyuncs.com","Code":"Forbidden.RAM",
            "Message":"denied","Recommend":"https://x","AccessDeniedDetail":{"AuthAction":"vpc:ModifySslVpnServer"}}"#;
        let err = CloudError::from_response(403, None, body);
        assert_eq!(err.kind(), PermissionDenied);
        assert_eq!(err.code(), "Forbidden.RAM");
        assert_eq!(err.message(), "denied");
        assert_eq!(err.request_id(), Some("R-1"));
        assert_eq!(err.host_id(), Some("vpc.aliyuncs.com"));
        assert_eq!(err.recommend(), Some("https://x"));
        assert_eq!(err.http_status(), Some(403));
        assert_eq!(
            err.access_denied_detail().and_then(|d| d.get("AuthAction")),
            Some(&Value::from("vpc:ModifySslVpnServer"))
        );
        assert_eq!(
            err.to_string(),
            "Forbidden.RAM: denied (HTTP 403, RequestId R-1)"
        );
    }

    #[test]
    fn lower_camel_and_xml_bodies_decode() {
        let err = CloudError::from_response(
            400,
            None,
            br#"{"requestId":"r","code":"IpConflict","message":"m"}"#,
        );
        assert_eq!(
            (err.code(), err.request_id(), err.kind()),
            ("IpConflict", Some("r"), Conflict)
        );
        let xml = b"<?xml version='1.0'?><Error><RequestId>X-1</RequestId><Code>ServiceUnavailable</Code><Message>down</Message></Error>";
        let err = CloudError::from_response(503, None, xml);
        assert_eq!(
            (err.code(), err.request_id(), err.kind()),
            ("ServiceUnavailable", Some("X-1"), Unavailable)
        );
    }

    #[test]
    fn unreadable_bodies_still_say_what_happened() {
        let err = CloudError::from_response(502, None, b"<html>\n<b>Bad   Gateway</b></html>");
        assert_eq!(err.code(), code::HTTP_ERROR);
        assert_eq!(err.kind(), Unavailable);
        assert_eq!(err.http_status(), Some(502));
        assert!(
            err.message()
                .contains("HTTP 502 Bad Gateway: <html> <b>Bad Gateway</b></html>"),
            "{}",
            err.message()
        );
        let err = CloudError::from_response(404, None, b"");
        assert_eq!(
            err.kind(),
            Unknown,
            "a bare 404 is no verdict on the resource"
        );
        assert!(err.message().contains("empty body"));
        let err = CloudError::from_response(
            404,
            None,
            br#"{"RequestId":"5A1C-REQ","Message":"no such route"}"#,
        );
        assert_eq!(err.kind(), Unknown);
        assert_eq!(err.request_id(), Some("5A1C-REQ"));
        assert!(err.message().contains("no such route"), "{}", err.message());
    }

    #[test]
    fn redaction_removes_every_encoding() {
        let err = CloudError::from_response(
            400,
            None,
            br#"{"Code":"SignatureDoesNotMatch","Message":"sts: AccessKeyId%3DLTAI5tKEY%26SecurityToken%3DCAIS.A%252BB and LTAI5tKEY"}"#,
        )
        .redact(&["LTAI5tKEY", "CAIS.A+B"]);
        assert!(!err.message().contains("LTAI5tKEY"), "{}", err.message());
        assert!(!err.message().contains("CAIS"), "{}", err.message());
    }
}
