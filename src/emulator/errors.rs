//! The cloud's error answers: one type for every refusal, and the one place
//! that renders it as the cloud's JSON error body.
//!
//! Every failure the emulator can answer is an [`ApiError`]: an HTTP status,
//! the cloud's `Code`, a `Message`. [`ApiError::body`] adds `RequestId`,
//! `HostId` and `Recommend` as the real endpoint does (reference §2.7), plus
//! `AccessDeniedDetail` on a 403 and the `x-acs-retry-after` header on
//! throttling, which the official SDK turns into a `ThrottlingException`.

use std::borrow::Cow;

use http::StatusCode;
use serde_json::{Value, json};

/// The cloud's error codes the emulator answers: the ModifySslVpnServer
/// document's own, and the common ones of the wire reference.
pub mod code {
    pub const MISSING_PARAMETER: &str = "MissingParameter";
    pub const INCOMPLETE_SIGNATURE: &str = "IncompleteSignature";
    pub const SIGNATURE_DOES_NOT_MATCH: &str = "SignatureDoesNotMatch";
    pub const ACCESS_KEY_NOT_FOUND: &str = "InvalidAccessKeyId.NotFound";
    pub const ACCESS_KEY_INACTIVE: &str = "InvalidAccessKeyId.Inactive";
    pub const TIMESTAMP_EXPIRED: &str = "InvalidTimeStamp.Expired";
    pub const TIMESTAMP_FORMAT: &str = "InvalidTimeStamp.Format";
    pub const NONCE_USED: &str = "SignatureNonceUsed";
    pub const SECURITY_TOKEN_MALFORMED: &str = "InvalidSecurityToken.Malformed";
    pub const SECURITY_TOKEN_MISMATCH: &str = "InvalidSecurityToken.MismatchWithAccessKey";
    pub const SECURITY_TOKEN_EXPIRED: &str = "InvalidSecurityToken.Expired";
    pub const API_NOT_FOUND: &str = "InvalidApi.NotFound";
    pub const UNSUPPORTED_METHOD: &str = "UnsupportedHTTPMethod";
    pub const REGION_NOT_FOUND: &str = "InvalidRegionId.NotFound";
    /// CreateSslVpnClientCert's reference (404) and Terraform's
    /// `SslVpnServerNotFound`; ModifySslVpnServer's document names none.
    pub const SERVER_NOT_FOUND: &str = "InvalidSslVpnServerId.NotFound";
    /// DescribeVpnGateway's reference (404) and Terraform's `VpnNotFound`.
    pub const GATEWAY_NOT_FOUND: &str = "InvalidVpnGatewayInstanceId.NotFound";
    pub const FORBIDDEN: &str = "Forbidden";
    pub const FINANCIAL_LOCKED: &str = "VpnGateway.FinancialLocked";
    pub const CONFIGURING: &str = "VpnGateway.Configuring";
    pub const THROTTLING_USER: &str = "Throttling.User";
    pub const IDEMPOTENT_MISMATCH: &str = "IdempotentParameterMismatch";
    pub const DRY_RUN: &str = "DryRunOperation";
    pub const INTERNAL_ERROR: &str = "InternalError";
    pub const SERVICE_UNAVAILABLE: &str = "ServiceUnavailable";
    pub const SYSTEM_BUSY: &str = "SystemBusy";
    pub const THROTTLING: &str = "Throttling";
    pub const OPERATION_CONFLICT: &str = "OperationConflict";
    pub const TASK_CONFLICT: &str = "TaskConflict";
    pub const VPN_TASK_CONFLICT: &str = "VpnTask.CONFLICT";
    pub const INCORRECT_STATUS_VPN_GATEWAY: &str = "IncorrectStatus.VpnGateway";
    pub const UNKNOWN_ERROR: &str = "UnknownError";
    pub const NOT_SUPPORT_MFA: &str = "OperationUnsupported.NotSupportMultiFactorAuth";
    pub const IDAAS2_NOT_SUPPORT: &str = "SslVpnIDaaS2.NotSupport";
    pub const IDAAS_INSTANCE_NOT_FOUND: &str = "InvalidIDaaSInstanceId.NotFound";
    pub const IDAAS_APPLICATION_NOT_FOUND: &str = "InvalidIDaaSApplicationId.NotFound";
    pub const IDAAS_APPLICATION_ILLEGAL: &str = "IllegalParam.IDaaSApplicationId";
    pub const IDAAS_GET_INFO_FAILED: &str = "OperationFailed.GetIDaaSInfo";
    pub const IDAAS_NO_RAM_PERMISSION: &str = "OperationFailed.NoRamPermission";
    pub const ROUTE_DEST_IN_POOL: &str = "EnableHaCheck.SslVpnServerClientCidrContainsVpcRouteDest";
    pub const ADD_ROUTE_ERROR: &str = "SslVpnServer.AddRouteError";
    pub const INVALID_NAME: &str = "InvalidName";
    pub const IP_CONFLICT: &str = "IpConflict";
    pub const NETMASK_INVALID: &str = "ClientIpPool.NetmaskInvalid";
    pub const SUBNET_INVALID: &str = "ClientIpPool.SubnetInvalid";
    pub const PORT_ILLEGAL: &str = "SslVpnServerPort.Illegal";
    pub const MISSING_IDAAS_INSTANCE_ID: &str = "MissingParameter.IDaaSInstanceId";
    pub const MISSING_IDAAS_REGION_ID: &str = "MissingParam.IDaaSRegionId";
    pub const MISSING_IDAAS_APPLICATION_ID: &str = "MissingParam.IDaaSApplicationId";
}

/// A refusal, before it gets its RequestId.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: Cow<'static, str>,
    pub message: String,
    /// `x-acs-retry-after`, in milliseconds.
    pub retry_after_ms: Option<u64>,
    /// The RAM action refused, for `AccessDeniedDetail`.
    pub auth_action: Option<String>,
}

impl ApiError {
    pub fn new(
        status: StatusCode,
        code: impl Into<Cow<'static, str>>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            status,
            code: code.into(),
            message: message.into(),
            retry_after_ms: None,
            auth_action: None,
        }
    }

    /// 400 with the given code.
    pub fn bad_request(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, code, message)
    }

    /// 404 with the given code.
    pub fn not_found(code: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, code, message)
    }

    /// `MissingParameter.<Name>`.
    pub fn missing(name: &str) -> Self {
        Self::bad_request(
            format!("{}.{name}", code::MISSING_PARAMETER),
            format!(
                "The input parameter \"{name}\" that is mandatory for processing this request is not supplied."
            ),
        )
    }

    /// `InvalidParameter.<Name>`.
    pub fn invalid(name: &str, why: impl Into<String>) -> Self {
        Self::bad_request(format!("InvalidParameter.{name}"), why)
    }

    /// `Throttling.User` with its retry hint.
    pub fn throttled(message: impl Into<String>, retry_after_ms: u64) -> Self {
        Self {
            retry_after_ms: Some(retry_after_ms.max(1)),
            ..Self::bad_request(code::THROTTLING_USER, message)
        }
    }

    /// 403 `Forbidden` for a key not granted the resource.
    pub fn forbidden(action: &str, resource: &str) -> Self {
        Self {
            auth_action: Some(format!("vpc:{action}")),
            ..Self::new(
                StatusCode::FORBIDDEN,
                code::FORBIDDEN,
                format!("User not authorized to operate on the specified resource: {resource}."),
            )
        }
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            code::INTERNAL_ERROR,
            "The request processing has failed due to some unknown error, exception or failure.",
        )
    }

    /// The JSON error body the cloud sends.
    pub fn body(&self, request_id: &str, host_id: &str) -> Value {
        let mut body = json!({
            "RequestId": request_id,
            "HostId": host_id,
            "Code": self.code,
            "Message": self.message,
            "Recommend": format!(
                "https://api.alibabacloud.com/troubleshoot?q={}&product=Vpc&requestId={request_id}",
                self.code
            ),
        });
        if let (Some(action), Some(map)) = (&self.auth_action, body.as_object_mut()) {
            map.insert(
                "AccessDeniedDetail".into(),
                json!({
                    "AuthAction": action,
                    "NoPermissionType": "ImplicitDeny",
                    "PolicyType": "ResourceGroupLevelIdentityBasedPolicy",
                    "AuthPrincipalType": "SubUser",
                    "EncodedDiagnosticMessage": "",
                }),
            );
        }
        body
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.code,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_has_the_cloud_fields() {
        let body = ApiError::missing("RegionId").body("REQ", "vpc.aliyuncs.com");
        assert_eq!(body["Code"], "MissingParameter.RegionId");
        assert_eq!(body["RequestId"], "REQ");
        assert_eq!(body["HostId"], "vpc.aliyuncs.com");
        assert!(
            body["Recommend"]
                .as_str()
                .unwrap()
                .contains("requestId=REQ")
        );
        assert!(body.get("AccessDeniedDetail").is_none());
    }

    #[test]
    fn forbidden_carries_access_denied_detail() {
        let e = ApiError::forbidden("ModifySslVpnServer", "vss-x");
        assert_eq!(e.status, StatusCode::FORBIDDEN);
        let body = e.body("R", "H");
        assert_eq!(
            body["AccessDeniedDetail"]["AuthAction"],
            "vpc:ModifySslVpnServer"
        );
    }
}
