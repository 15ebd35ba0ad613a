//! The contract's messages and errors as text for people.
//!
//! Pure functions from messages to strings, so the wording is tested
//! without a terminal; `progress` decides where and when they are written.
//! Errors end with what to do about them, the same advice as the README's
//! error table, because the person reading is the one who must act.

use std::{fmt::Write as _, time::Duration};

use tonic::{Code, Status};
use tonic_types::StatusExt;

use super::json::code_name;
use crate::pb;

/// An enum value's name without its type prefix: `PHASE_APPLYING` → `APPLYING`.
fn short(name: &'static str, prefix: &str) -> &'static str {
    name.strip_prefix(prefix).unwrap_or(name)
}

pub fn phase(n: i32) -> String {
    match pb::Phase::try_from(n) {
        Ok(p) => short(p.as_str_name(), "PHASE_").to_owned(),
        Err(_) => format!("phase {n}"),
    }
}

pub fn gateway_status(n: i32) -> String {
    match pb::GatewayStatus::try_from(n) {
        Ok(s) => short(s.as_str_name(), "GATEWAY_STATUS_").to_owned(),
        Err(_) => format!("status {n}"),
    }
}

fn protocol(n: i32) -> String {
    match pb::Protocol::try_from(n) {
        Ok(p) => short(p.as_str_name(), "PROTOCOL_").to_owned(),
        Err(_) => format!("protocol {n}"),
    }
}

fn cipher(n: i32) -> String {
    match pb::Cipher::try_from(n) {
        Ok(c) => short(c.as_str_name(), "CIPHER_").replace('_', "-"),
        Err(_) => format!("cipher {n}"),
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

/// `4.2s`, `3m05s`: short enough for a spinner line.
pub fn elapsed(d: Duration) -> String {
    let secs = d.as_secs();
    if secs < 60 {
        format!("{:.1}s", d.as_secs_f64())
    } else if secs < 3600 {
        format!("{}m{:02}s", secs / 60, secs % 60)
    } else {
        format!("{}h{:02}m", secs / 3600, (secs % 3600) / 60)
    }
}

pub fn proto_duration(d: Option<&prost_types::Duration>) -> Duration {
    d.and_then(|d| Duration::try_from(*d).ok())
        .unwrap_or_default()
}

/// A server's configuration, one setting a line, labelled with the proto
/// field names (which are also the `client modify` flags).
pub fn server(s: &pb::SslVpnServer) -> String {
    let mut out = String::new();
    let name = if s.name.is_empty() {
        String::new()
    } else {
        format!(" {:?}", s.name)
    };
    let _ = writeln!(
        out,
        "{}{name} in {}, gateway {}",
        s.ssl_vpn_server_id, s.region_id, s.vpn_gateway_id
    );
    let mut row = |label: &str, value: String| {
        let _ = writeln!(out, "  {label:<26}{value}");
    };
    row("local_subnet", s.local_subnet.clone());
    row("client_ip_pool", s.client_ip_pool.clone());
    row("proto", protocol(s.proto));
    row("port", s.port.to_string());
    row("cipher", cipher(s.cipher));
    row("compress", on_off(s.compress).to_owned());
    row(
        "connections",
        format!("{} of {}", s.connections, s.max_connections),
    );
    row("internet_ip", s.internet_ip.clone());
    if !s.dns_servers.is_empty() {
        row("dns_servers", s.dns_servers.clone());
    }
    row(
        "enable_multi_factor_auth",
        on_off(s.enable_multi_factor_auth).to_owned(),
    );
    if !s.idaas_instance_id.is_empty() {
        row(
            "idaas_instance_id",
            format!("{} ({})", s.idaas_instance_id, s.idaas_region_id),
        );
    }
    if !s.idaas_application_id.is_empty() {
        row("idaas_application_id", s.idaas_application_id.clone());
    }
    if let Some(t) = &s.create_time {
        row("create_time", t.to_string());
    }
    out
}

pub fn gateway(g: &pb::GatewayState) -> String {
    let observed = g
        .observed_at
        .as_ref()
        .map(|t| format!(", observed {t}"))
        .unwrap_or_default();
    let business = if g.business_status.is_empty() {
        String::new()
    } else {
        format!(" ({})", g.business_status)
    };
    format!(
        "gateway {} is {}{business}{observed}\n",
        g.vpn_gateway_id,
        gateway_status(g.status)
    )
}

pub fn status(r: &pb::GetSslVpnServerStatusResponse) -> String {
    let mut out = String::new();
    if let Some(g) = &r.gateway {
        out.push_str(&gateway(g));
    }
    if let Some(s) = &r.ssl_vpn_server {
        out.push_str(&server(s));
    }
    out
}

/// What `client modify` prints once the cloud accepted the change.
pub fn modified(
    r: &pb::ModifySslVpnServerResponse,
    region: &str,
    server_id: &str,
    watching: bool,
) -> String {
    let mut out = String::new();
    if r.validate_only {
        let _ = writeln!(
            out,
            "dry run: every check passed (the cloud's included); nothing was changed"
        );
        if !r.request_id.is_empty() {
            let _ = writeln!(out, "  request_id    {}", r.request_id);
        }
        return out;
    }
    let op = r.operation.clone().unwrap_or_default();
    if op.done {
        let _ = writeln!(out, "done: the change is already in place");
    } else {
        let _ = writeln!(
            out,
            "accepted: gateway {} is applying the change",
            op.vpn_gateway_id
        );
    }
    let _ = writeln!(out, "  operation_id  {}", op.id);
    let _ = writeln!(out, "  client_token  {}", r.client_token);
    if !r.request_id.is_empty() {
        let _ = writeln!(out, "  request_id    {}", r.request_id);
    }
    if !op.done && !watching {
        let _ = writeln!(
            out,
            "follow it with:\n  sslvpn-gateway client watch --region {region} --server {server_id} --operation-id {}",
            op.id
        );
    }
    out
}

/// One watch message as a line: elapsed, phase, gateway status, pending fields.
pub fn watch_line(m: &pb::WatchSslVpnServerResponse, elapsed_now: Duration) -> String {
    let status = m
        .gateway
        .as_ref()
        .map(|g| gateway_status(g.status))
        .unwrap_or_else(|| "?".to_owned());
    let mut line = format!(
        "{:>7}  {:<9}  gateway {status}",
        elapsed(elapsed_now),
        phase(m.phase)
    );
    if !m.pending_fields.is_empty() {
        let _ = write!(line, "  pending: {}", m.pending_fields.join(", "));
    }
    line
}

/// What follows the last line of a finished watch.
pub fn watch_end(m: &pb::WatchSslVpnServerResponse) -> String {
    match m.phase() {
        pb::Phase::Succeeded => match &m.ssl_vpn_server {
            Some(s) => format!("succeeded: the change is in place\n{}", server(s)),
            None => "succeeded\n".to_owned(),
        },
        pb::Phase::Failed => {
            let mut out = String::from("failed: the change cannot complete\n");
            if let Some(e) = &m.error {
                out.push_str(&error(&super::json::rpc_status(e)));
            }
            out
        }
        pb::Phase::TimedOut => {
            "timed out: the change may still complete; watch again with the same --operation-id\n"
                .to_owned()
        }
        _ => String::new(),
    }
}

/// What to do about an error with this code (the README's advice).
pub fn advice(code: Code) -> &'static str {
    match code {
        Code::InvalidArgument | Code::OutOfRange => "fix every field listed and send again",
        Code::NotFound => "check the region and the server id",
        Code::FailedPrecondition => {
            "wait until the gateway is active again (see retry after), or fix what the reason names"
        }
        Code::Aborted => "another change to this gateway is being sent; retry shortly",
        Code::PermissionDenied => {
            "the cloud refused the gateway's credentials for this resource: grant the RAM permission"
        }
        Code::Unauthenticated => "check --token (or SSLVPN_TOKEN) and the TLS client certificate",
        Code::ResourceExhausted => "throttled: retry after the delay given",
        Code::Unavailable => "retry; a modify is safe to repeat with the same --client-token",
        Code::DeadlineExceeded | Code::Cancelled => {
            "retry; a modify is safe to repeat with the same --client-token"
        }
        Code::Internal => {
            "the gateway's own cloud credentials are wrong or missing: tell its operator"
        }
        _ => "retry later; if it persists, tell the gateway's operator",
    }
}

/// An error status with every detail the gateway attached.
pub fn error(status: &Status) -> String {
    let mut out = format!(
        "error: {}: {}\n",
        code_name(status.code()),
        status.message()
    );
    let details = status.get_error_details();
    if let Some(info) = details.error_info() {
        match info.metadata.get("origin") {
            Some(origin) => {
                let _ = writeln!(
                    out,
                    "  reason: {} ({}, answered by the {origin})",
                    info.reason, info.domain
                );
            }
            None => {
                let _ = writeln!(out, "  reason: {} ({})", info.reason, info.domain);
            }
        }
    }
    if let Some(bad) = details.bad_request() {
        for v in &bad.field_violations {
            let _ = writeln!(out, "  - {}: {}", v.field, v.description);
        }
    }
    if let Some(delay) = details.retry_info().and_then(|r| r.retry_delay) {
        let _ = writeln!(out, "  retry after: {}", elapsed(delay));
    }
    if let Some(info) = details.request_info() {
        let _ = writeln!(out, "  request id: {}", info.request_id);
    }
    let _ = writeln!(out, "  what to do: {}", advice(status.code()));
    out
}

#[cfg(test)]
mod tests {
    use tonic_types::{ErrorDetails, FieldViolation};

    use super::*;

    #[test]
    fn elapsed_reads_well_at_every_scale() {
        assert_eq!(elapsed(Duration::from_millis(4200)), "4.2s");
        assert_eq!(elapsed(Duration::from_secs(185)), "3m05s");
        assert_eq!(elapsed(Duration::from_secs(7260)), "2h01m");
    }

    #[test]
    fn a_bad_request_lists_every_violation_and_the_advice() {
        let status = Status::with_error_details(
            Code::InvalidArgument,
            "invalid request, 2 violations",
            ErrorDetails::with_bad_request(vec![
                FieldViolation::new("port", "443 is reserved (SslVpnServerPort.Illegal)"),
                FieldViolation::new("client_ip_pool", "mask /30 (ClientIpPool.NetmaskInvalid)"),
            ]),
        );
        let text = error(&status);
        assert!(text.starts_with("error: INVALID_ARGUMENT: "), "{text}");
        assert!(text.contains("  - port: 443 is reserved"), "{text}");
        assert!(text.contains("  - client_ip_pool: mask /30"), "{text}");
        assert!(text.contains("what to do: fix every field"), "{text}");
    }

    #[test]
    fn the_reason_says_who_answered() {
        let status = Status::with_error_details(
            Code::FailedPrecondition,
            "conflict",
            ErrorDetails::with_error_info(
                "IpConflict",
                "vpc.aliyuncs.com",
                [("origin".to_owned(), "cloud".to_owned())],
            ),
        );
        assert!(
            error(&status)
                .contains("  reason: IpConflict (vpc.aliyuncs.com, answered by the cloud)\n"),
            "{}",
            error(&status)
        );
    }

    #[test]
    fn a_watch_line_shows_phase_status_and_pending_fields() {
        let m = pb::WatchSslVpnServerResponse {
            phase: pb::Phase::Applying as i32,
            gateway: Some(pb::GatewayState {
                status: pb::GatewayStatus::Updating as i32,
                ..Default::default()
            }),
            pending_fields: vec!["port".into(), "local_subnet".into()],
            ..Default::default()
        };
        assert_eq!(
            watch_line(&m, Duration::from_millis(2500)),
            "   2.5s  APPLYING   gateway UPDATING  pending: port, local_subnet"
        );
    }
}
