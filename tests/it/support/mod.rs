//! Helpers shared by the integration tests.

pub mod emulator;
pub mod fake_upstream;
pub mod harness;
pub mod procs;
pub mod secure;

/// Set in the process [`in_own_process`] starts, to the test it runs.
const OWN_PROCESS: &str = "SSLVPN_IT_OWN_PROCESS";

/// Whether the calling test should run its body here.
///
/// Every test of this crate is a thread of one process, so a test that
/// installs process-wide state (the global tracing subscriber,
/// OpenTelemetry's tracer provider and propagator), that needs a scoped
/// subscriber to see every event (tracing caches each callsite's interest
/// process-wide, from whichever thread reaches it first), or that asserts
/// on the process-wide metrics registry would both disturb the others and
/// see their traffic. Such a test calls this first, with its full name
/// (`module::function`): the test binary is run again for that test alone,
/// and this returns `false` once that run has passed (panicking with its
/// output if not); in that process of its own it returns `true`.
pub async fn in_own_process(test: &str) -> bool {
    if std::env::var_os(OWN_PROCESS).is_some_and(|t| t == test) {
        return true;
    }
    let output = tokio::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", test, "--test-threads", "1"])
        .env(OWN_PROCESS, test)
        .stdin(std::process::Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .expect("the test binary runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} failed in its own process ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}
