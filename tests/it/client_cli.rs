//! `sslvpn-gateway client` end to end: the real binary against a gateway on
//! the emulator, judged by what a script sees — stdout, stderr and the
//! exit code of each outcome.

use serde_json::Value;

use crate::support::{
    ClosedPort,
    harness::*,
    procs::{self, Gateway, client},
};

fn addr(s: &Stack) -> String {
    format!("http://{}", s.server.local_addr())
}

#[tokio::test]
async fn modify_and_watch_to_succeeded_in_json() {
    let s = stack_with_timings(100, 300).await;
    let run = client(
        &addr(&s),
        &[
            "--output",
            "json",
            "modify",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--port",
            "1250",
            "--local-subnet",
            "172.16.0.0/16,10.8.0.0/24",
            "--watch",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let lines = run.json_lines();
    assert!(lines.len() >= 2, "{lines:?}");
    let accepted = &lines[0];
    let op = accepted["operation"]["id"].as_str().unwrap();
    assert!(op.starts_with("op1."), "{accepted}");
    assert_eq!(accepted["operation"]["done"], false);
    assert!(
        !accepted["client_token"].as_str().unwrap().is_empty(),
        "the client sends a token of its own"
    );
    let phases: Vec<&str> = lines[1..]
        .iter()
        .map(|l| l["phase"].as_str().unwrap())
        .collect();
    assert_eq!(phases.last(), Some(&"PHASE_SUCCEEDED"), "{phases:?}");
    assert!(
        phases[..phases.len() - 1]
            .iter()
            .all(|p| *p == "PHASE_PENDING" || *p == "PHASE_APPLYING"),
        "{phases:?}"
    );
    let last = lines.last().unwrap();
    assert_eq!(last["ssl_vpn_server"]["port"], 1250);
    assert_eq!(
        last["ssl_vpn_server"]["local_subnet"],
        "172.16.0.0/16,10.8.0.0/24"
    );
    assert_eq!(last["gateway"]["status"], "GATEWAY_STATUS_ACTIVE");
    assert_eq!(last["pending_fields"], Value::Array(vec![]));
    assert!(run.stderr.is_empty(), "{}", run.stderr);
}

#[tokio::test]
async fn modify_then_watch_in_plain_lines_without_terminal_codes() {
    let s = stack_with_timings(100, 300).await;
    let a = addr(&s);
    let run = client(
        &a,
        &[
            "modify", "--region", REGION, "--server", SERVER, "--port", "1251",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.starts_with("accepted: "), "{}", run.stdout);
    let op = run
        .stdout
        .lines()
        .find_map(|l| l.trim().strip_prefix("operation_id"))
        .map(str::trim)
        .expect("the operation id is printed")
        .to_owned();
    assert!(
        run.stdout.contains(&format!("--operation-id {op}")),
        "a hint to follow it: {}",
        run.stdout
    );

    let run = client(
        &a,
        &[
            "watch",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--operation-id",
            &op,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    // Not a terminal: no spinner, no carriage returns, no escapes.
    assert!(
        !run.stdout.contains('\x1b') && !run.stdout.contains('\r'),
        "{:?}",
        run.stdout
    );
    let phase_lines: Vec<&str> = run
        .stdout
        .lines()
        .filter(|l| l.contains("  gateway "))
        .collect();
    assert!(
        phase_lines.last().unwrap().contains("SUCCEEDED"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("succeeded: the change is in place"));
    assert!(run.stdout.contains("port                      1251"));
}

#[tokio::test]
async fn bad_input_prints_every_violation_and_exits_2() {
    let s = stack_with_timings(100, 300).await;
    let a = addr(&s);
    let bad = [
        "modify",
        "--region",
        REGION,
        "--server",
        SERVER,
        "--client-ip-pool",
        "10.0.0.0/30",
        "--port",
        "443",
    ];
    let run = client(&a, &bad).await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.starts_with("error: INVALID_ARGUMENT"), "{run:?}");
    assert!(
        run.stderr.contains("  - client_ip_pool: "),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("  - port: "), "{}", run.stderr);
    assert!(run.stdout.is_empty());

    let mut json_args = vec!["--output", "json"];
    json_args.extend_from_slice(&bad);
    let run = client(&a, &json_args).await;
    assert_eq!(run.code, 2, "{run:?}");
    let error = &run.json_lines()[0]["error"];
    assert_eq!(error["code"], "INVALID_ARGUMENT");
    assert_eq!(error["domain"], "vpc.aliyuncs.com");
    let mut fields: Vec<&str> = error["field_violations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["field"].as_str().unwrap())
        .collect();
    fields.sort_unstable();
    assert_eq!(fields, ["client_ip_pool", "port"]);

    // Refused before any call: an unknown enum value, an unreadable file.
    let run = client(
        &a,
        &[
            "modify", "--region", REGION, "--server", SERVER, "--proto", "sctp",
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    let run = client(
        &a,
        &[
            "--ca-cert",
            "/nonexistent/ca.pem",
            "status",
            "--region",
            REGION,
            "--server",
            SERVER,
        ],
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    assert!(run.stderr.contains("--ca-cert"), "{}", run.stderr);
}

#[tokio::test]
async fn status_prints_the_server_and_an_unknown_server_exits_1() {
    let s = stack_with_timings(100, 300).await;
    let a = addr(&s);
    let run = client(
        &a,
        &[
            "--output", "json", "status", "--region", REGION, "--server", SERVER,
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    let status = &run.json_lines()[0];
    assert_eq!(status["ssl_vpn_server"]["ssl_vpn_server_id"], SERVER);
    assert_eq!(status["gateway"]["vpn_gateway_id"], GATEWAY);

    let run = client(
        &a,
        &[
            "--output",
            "json",
            "status",
            "--region",
            REGION,
            "--server",
            "vss-doesnotexist",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let error = &run.json_lines()[0]["error"];
    assert_eq!(error["code"], "NOT_FOUND");
    assert_eq!(error["reason"], "InvalidSslVpnServerId.NotFound");
}

#[tokio::test]
async fn a_locked_gateway_fails_the_watch_with_exit_1() {
    let s = stack_with_timings(100, 300).await;
    let run = client(
        &addr(&s),
        &[
            "--output",
            "json",
            "watch",
            "--region",
            REGION,
            "--server",
            "vss-hz2locked",
        ],
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");
    let last = run.json_lines().pop().unwrap();
    assert_eq!(last["phase"], "PHASE_FAILED");
    assert_eq!(last["error"]["reason"], "VpnGateway.FinancialLocked");
}

#[tokio::test]
async fn a_watch_past_its_timeout_exits_3() {
    let mut s = stack_with_timings(100, 10_000).await;
    let op = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1252))
        .await
        .unwrap()
        .into_inner()
        .operation
        .unwrap()
        .id;
    let run = client(
        &addr(&s),
        &[
            "watch",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--operation-id",
            &op,
            "--timeout",
            "700ms",
        ],
    )
    .await;
    assert_eq!(run.code, 3, "{run:?}");
    assert!(run.stdout.contains("TIMED_OUT"), "{}", run.stdout);
    assert!(run.stdout.contains("timed out: "), "{}", run.stdout);
}

#[tokio::test]
async fn no_gateway_at_the_address_exits_4() {
    let closed = ClosedPort::new();
    let run = client(
        &closed.addr.to_string(),
        &[
            "--connect-timeout",
            "2s",
            "status",
            "--region",
            REGION,
            "--server",
            SERVER,
        ],
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");
    assert!(run.stderr.contains("cannot connect"), "{}", run.stderr);
}

#[tokio::test]
async fn serve_emulator_prints_its_port_and_takes_the_emulator_variables() {
    let mut serve = Gateway::start(
        &["--emulator", "--poll-min-interval", "50ms"],
        &[
            ("SSLVPN_EMULATOR_ACCEPT_LAG", "100ms"),
            ("SSLVPN_EMULATOR_APPLY_TIME", "300ms"),
            ("SSLVPN_EMULATOR_QUIET_PERIOD", "0s"),
        ],
    )
    .await;
    let addr = serve.addr.clone();
    assert!(
        !addr.ends_with(":0"),
        "the bound port, not the asked one: {addr}"
    );

    let started = std::time::Instant::now();
    let run = client(
        &addr,
        &[
            "modify", "--region", REGION, "--server", SERVER, "--port", "1253", "--watch",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    // The emulator's defaults (2 s + 8 s) would take ten seconds.
    assert!(
        started.elapsed() < std::time::Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    serve.child.start_kill().unwrap();
}

#[tokio::test]
async fn on_a_terminal_a_spinner_shows_progress_and_is_cleared() {
    let s = stack_with_timings(200, 800).await;
    // script(1) runs the client on a pseudo-terminal.
    let command = format!(
        "{} client --addr {} modify --region {REGION} --server {SERVER} --port 1254 --watch",
        procs::BIN,
        addr(&s)
    );
    let output = tokio::time::timeout(
        std::time::Duration::from_secs(30),
        tokio::process::Command::new("script")
            .args(["-q", "-e", "-c", &command, "/dev/null"])
            .env_clear()
            .stdin(std::process::Stdio::null())
            .output(),
    )
    .await
    .expect("in time")
    .expect("script(1) runs");
    let screen = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{screen}");
    // Redrawn in place: return, clear line, a frame, the phase and status.
    assert!(screen.contains("\r\x1b[2K"), "{screen:?}");
    assert!(
        screen.contains(" APPLYING · gateway UPDATING · "),
        "{screen:?}"
    );
    assert!(screen.contains("pending: port"), "{screen:?}");
    // The spinner line is cleared before the result is printed.
    let end = screen.rfind("SUCCEEDED").expect("the terminal line");
    assert!(
        !screen[end..].contains('⠋') && !screen[end..].contains(" · gateway "),
        "{screen:?}"
    );
}
