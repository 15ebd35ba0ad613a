//! The contract's messages as JSON, for `--output json`.
//!
//! prost messages do not derive `Serialize`, and a scripting interface
//! should not change shape when the generated code does, so the mapping is
//! written out here. It follows the proto3 JSON mapping with the proto
//! field names kept (`ssl_vpn_server_id`, as `preserving_proto_field_name`
//! would print them) and every field present: enums by their value names
//! (`PHASE_SUCCEEDED`; a number when this version does not know it),
//! timestamps in RFC 3339, durations as `"1.500s"`. Errors become
//! `{"error": {...}}` with every detail the gateway attached.

use serde_json::{Map, Value, json};
use tonic::Status;
use tonic_types::StatusExt;

use crate::pb;

fn enum_value<E>(n: i32, name: impl Fn(E) -> &'static str) -> Value
where
    E: TryFrom<i32>,
{
    match E::try_from(n) {
        Ok(e) => Value::from(name(e)),
        Err(_) => Value::from(n),
    }
}

pub fn protocol(n: i32) -> Value {
    enum_value(n, |e: pb::Protocol| e.as_str_name())
}

pub fn cipher(n: i32) -> Value {
    enum_value(n, |e: pb::Cipher| e.as_str_name())
}

pub fn gateway_status(n: i32) -> Value {
    enum_value(n, |e: pb::GatewayStatus| e.as_str_name())
}

pub fn phase(n: i32) -> Value {
    enum_value(n, |e: pb::Phase| e.as_str_name())
}

pub fn timestamp(t: Option<&prost_types::Timestamp>) -> Value {
    t.map_or(Value::Null, |t| Value::from(t.to_string()))
}

pub fn duration(d: Option<&prost_types::Duration>) -> Value {
    d.map_or(Value::Null, |d| Value::from(d.to_string()))
}

pub fn server(s: Option<&pb::SslVpnServer>) -> Value {
    let Some(s) = s else {
        return Value::Null;
    };
    json!({
        "ssl_vpn_server_id": s.ssl_vpn_server_id,
        "vpn_gateway_id": s.vpn_gateway_id,
        "region_id": s.region_id,
        "name": s.name,
        "local_subnet": s.local_subnet,
        "client_ip_pool": s.client_ip_pool,
        "proto": protocol(s.proto),
        "port": s.port,
        "cipher": cipher(s.cipher),
        "compress": s.compress,
        "connections": s.connections,
        "max_connections": s.max_connections,
        "internet_ip": s.internet_ip,
        "create_time": timestamp(s.create_time.as_ref()),
        "enable_multi_factor_auth": s.enable_multi_factor_auth,
        "idaas_instance_id": s.idaas_instance_id,
        "idaas_application_id": s.idaas_application_id,
        "idaas_region_id": s.idaas_region_id,
        "idaas_instance_version": s.idaas_instance_version,
        "resource_group_id": s.resource_group_id,
        "dns_servers": s.dns_servers,
    })
}

pub fn gateway(g: Option<&pb::GatewayState>) -> Value {
    let Some(g) = g else {
        return Value::Null;
    };
    json!({
        "vpn_gateway_id": g.vpn_gateway_id,
        "status": gateway_status(g.status),
        "business_status": g.business_status,
        "observed_at": timestamp(g.observed_at.as_ref()),
    })
}

pub fn operation(o: Option<&pb::Operation>) -> Value {
    let Some(o) = o else {
        return Value::Null;
    };
    json!({
        "id": o.id,
        "done": o.done,
        "vpn_gateway_id": o.vpn_gateway_id,
    })
}

pub fn modify_response(r: &pb::ModifySslVpnServerResponse) -> Value {
    json!({
        "ssl_vpn_server": server(r.ssl_vpn_server.as_ref()),
        "request_id": r.request_id,
        "client_token": r.client_token,
        "operation": operation(r.operation.as_ref()),
        "validate_only": r.validate_only,
    })
}

pub fn status_response(r: &pb::GetSslVpnServerStatusResponse) -> Value {
    json!({
        "ssl_vpn_server": server(r.ssl_vpn_server.as_ref()),
        "gateway": gateway(r.gateway.as_ref()),
    })
}

pub fn watch_message(m: &pb::WatchSslVpnServerResponse) -> Value {
    json!({
        "gateway": gateway(m.gateway.as_ref()),
        "phase": phase(m.phase),
        "ssl_vpn_server": server(m.ssl_vpn_server.as_ref()),
        "error": m.error.as_ref().map_or(Value::Null, |e| status_body(&rpc_status(e))),
        "elapsed": duration(m.elapsed.as_ref()),
        "pending_fields": m.pending_fields,
    })
}

/// A `google.rpc.Status` from a watch message as a tonic status, so its
/// details decode the same way as a failed call's.
pub fn rpc_status(s: &tonic_types::pb::Status) -> Status {
    use prost::Message;
    Status::with_details(
        tonic::Code::from_i32(s.code),
        s.message.clone(),
        s.encode_to_vec().into(),
    )
}

/// The gRPC code's canonical name (`INVALID_ARGUMENT`).
pub fn code_name(code: tonic::Code) -> &'static str {
    use tonic::Code::*;
    match code {
        Ok => "OK",
        Cancelled => "CANCELLED",
        Unknown => "UNKNOWN",
        InvalidArgument => "INVALID_ARGUMENT",
        DeadlineExceeded => "DEADLINE_EXCEEDED",
        NotFound => "NOT_FOUND",
        AlreadyExists => "ALREADY_EXISTS",
        PermissionDenied => "PERMISSION_DENIED",
        ResourceExhausted => "RESOURCE_EXHAUSTED",
        FailedPrecondition => "FAILED_PRECONDITION",
        Aborted => "ABORTED",
        OutOfRange => "OUT_OF_RANGE",
        Unimplemented => "UNIMPLEMENTED",
        Internal => "INTERNAL",
        Unavailable => "UNAVAILABLE",
        DataLoss => "DATA_LOSS",
        Unauthenticated => "UNAUTHENTICATED",
    }
}

/// A status with its decoded details: `code`, `message`, and when present
/// `reason`, `domain`, `metadata`, `field_violations`, `retry_after`,
/// `request_id`.
pub fn status_body(status: &Status) -> Value {
    let mut out = Map::new();
    out.insert("code".into(), code_name(status.code()).into());
    out.insert("message".into(), status.message().into());
    // Details that do not decode are left out rather than failing the output.
    let details = status.get_error_details();
    if let Some(info) = details.error_info() {
        out.insert("reason".into(), info.reason.clone().into());
        out.insert("domain".into(), info.domain.clone().into());
        let metadata: Map<String, Value> = info
            .metadata
            .iter()
            .map(|(k, v)| (k.clone(), Value::from(v.clone())))
            .collect();
        out.insert("metadata".into(), Value::Object(metadata));
    }
    if let Some(bad) = details.bad_request() {
        let violations: Vec<Value> = bad
            .field_violations
            .iter()
            .map(|v| {
                json!({
                    "field": v.field,
                    "description": v.description,
                    "reason": v.reason,
                })
            })
            .collect();
        out.insert("field_violations".into(), Value::Array(violations));
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        out.insert(
            "retry_after".into(),
            format!("{:.3}s", delay.as_secs_f64()).into(),
        );
    }
    if let Some(info) = details.request_info() {
        out.insert("request_id".into(), info.request_id.clone().into());
    }
    Value::Object(out)
}

/// `{"error": {...}}`: what a failed command prints with `--output json`.
pub fn error(status: &Status) -> Value {
    json!({ "error": status_body(status) })
}

/// A failure that never reached a gateway (bad flags, no connection).
pub fn local_error(code: &str, message: &str) -> Value {
    json!({ "error": { "code": code, "message": message } })
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[test]
    fn unknown_enum_numbers_stay_numbers() {
        assert_eq!(phase(3), json!("PHASE_SUCCEEDED"));
        assert_eq!(phase(99), json!(99));
        assert_eq!(cipher(4), json!("CIPHER_NONE"));
    }

    #[test]
    fn every_field_violation_and_the_reason_are_kept() {
        let status = Status::with_error_details(
            tonic::Code::InvalidArgument,
            "invalid request, 2 violations",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("port", "reserved"),
                FieldViolation::new("client_ip_pool", "mask"),
            ])
            .set_error_info(
                "SslVpnServerPort.Illegal",
                "vpc.aliyuncs.com",
                std::collections::HashMap::new(),
            )
            .set_retry_info(Some(std::time::Duration::from_millis(1500)))
            .clone(),
        );
        let v = error(&status);
        assert_eq!(v["error"]["code"], "INVALID_ARGUMENT");
        assert_eq!(v["error"]["reason"], "SslVpnServerPort.Illegal");
        assert_eq!(v["error"]["retry_after"], "1.500s");
        let fields: Vec<&str> = v["error"]["field_violations"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| f["field"].as_str().unwrap())
            .collect();
        assert_eq!(fields, ["port", "client_ip_pool"]);
    }

    #[test]
    fn a_watch_error_decodes_like_a_call_error() {
        let status = Status::with_error_details(
            tonic::Code::FailedPrecondition,
            "locked",
            ErrorDetails::with_error_info(
                "VpnGateway.FinancialLocked",
                "vpc.aliyuncs.com",
                std::collections::HashMap::new(),
            ),
        );
        use prost::Message;
        let rpc = tonic_types::pb::Status::decode(status.details()).unwrap();
        let m = pb::WatchSslVpnServerResponse {
            phase: pb::Phase::Failed as i32,
            error: Some(rpc),
            elapsed: Some(prost_types::Duration {
                seconds: 2,
                nanos: 500_000_000,
            }),
            ..Default::default()
        };
        let v = watch_message(&m);
        assert_eq!(v["phase"], "PHASE_FAILED");
        assert_eq!(v["elapsed"], "2.500s");
        assert_eq!(v["error"]["code"], "FAILED_PRECONDITION");
        assert_eq!(v["error"]["reason"], "VpnGateway.FinancialLocked");
    }
}
