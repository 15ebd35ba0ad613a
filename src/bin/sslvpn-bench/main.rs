//! `sslvpn-bench`: the load driver behind BENCHMARKS.md.
//!
//! Every scenario runs the gateway and a baseline side by side in the same
//! run and prints both with their ratio, as a table and as JSON. `smoke`
//! runs tiny versions of them and checks only what is not timing: every
//! request answered, and upstream status calls that do not grow with the
//! number of watchers. Run it from a release build for real figures:
//! `cargo run --release --features bench --bin sslvpn-bench -- all`.

mod gateway;
mod load;
mod scenarios;

use std::{path::PathBuf, process::ExitCode};

use clap::{Parser, ValueEnum};
use serde_json::{Value, json};

use scenarios::Size;

#[derive(Parser)]
#[command(name = "sslvpn-bench", about = "Load driver for sslvpn-gateway")]
struct Cli {
    /// Which scenario; `all` runs every one at full size, `smoke` a quick
    /// check of each that asserts no timing.
    #[arg(value_enum)]
    scenario: Scenario,
    /// Also write the results as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Scenario {
    All,
    Smoke,
    Rejection,
    Forwarded,
    Fanout,
    Fleet,
    Signing,
    Startup,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    let size = if cli.scenario == Scenario::Smoke {
        Size::smoke()
    } else {
        Size::full()
    };
    let want =
        |s: Scenario| matches!(cli.scenario, Scenario::All | Scenario::Smoke) || cli.scenario == s;
    let mut results = serde_json::Map::new();
    results.insert("machine".into(), machine());
    let mut run = |name: &str, result: Result<Value, String>| match result {
        Ok(v) => {
            println!(
                "== {name}\n{}",
                serde_json::to_string_pretty(&v).unwrap_or_default()
            );
            results.insert(name.to_owned(), v);
            true
        }
        Err(e) => {
            eprintln!("== {name} failed: {e}");
            results.insert(name.to_owned(), json!({ "error": e }));
            false
        }
    };
    let mut ok = true;
    if want(Scenario::Signing) {
        ok &= run("signing", scenarios::signing(&size).await);
    }
    if want(Scenario::Rejection) {
        ok &= run("rejection", scenarios::rejection(&size).await);
    }
    if want(Scenario::Forwarded) {
        ok &= run("forwarded", scenarios::forwarded(&size).await);
    }
    if want(Scenario::Fanout) {
        ok &= run("fanout", scenarios::fanout(&size).await);
    }
    if want(Scenario::Fleet) {
        ok &= run("fleet", scenarios::fleet(&size).await);
    }
    if want(Scenario::Startup) {
        ok &= run("startup", scenarios::startup(&size).await);
    }
    let results = Value::Object(results);
    if let Some(path) = &cli.json
        && let Err(e) = std::fs::write(
            path,
            serde_json::to_vec_pretty(&results).unwrap_or_default(),
        )
    {
        eprintln!("cannot write {}: {e}", path.display());
        ok = false;
    }
    if cli.scenario == Scenario::Smoke {
        let (passed, failed) = smoke_checks(&results);
        println!("smoke: {passed} passed, {failed} failed");
        ok &= failed == 0;
    }
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

/// What smoke mode asserts: nothing about time.
fn smoke_checks(r: &Value) -> (usize, usize) {
    let mut passed = 0;
    let mut failed = 0;
    let mut check = |what: &str, holds: bool| {
        if holds {
            passed += 1;
        } else {
            failed += 1;
            eprintln!("smoke check failed: {what}");
        }
    };
    check(
        "rejection: every request answered",
        r["rejection"]["every_request_answered"] == json!(true),
    );
    check(
        "forwarded: every request answered",
        r["forwarded"]["every_request_answered"] == json!(true),
    );
    let fleet = &r["fleet"];
    check(
        "fleet: every watcher started",
        fleet["stream_failures"] == json!(0) && fleet["streams_started"] == fleet["streams"],
    );
    check(
        "fleet: every watcher of the changed gateway saw it",
        fleet["change_watchers_succeeded"] == fleet["change_watchers"],
    );
    check(
        "fleet: the sweeps cost less than one poller per gateway",
        fleet["idle_calls_per_min"].as_f64() < fleet["baseline_idle_calls_per_min"].as_f64(),
    );
    check(
        "fleet: nothing throttled",
        fleet["throttled_total"] == json!(0),
    );
    let runs = r["fanout"]["runs"].as_array().cloned().unwrap_or_default();
    check("fanout: two runs", runs.len() == 2);
    for run in &runs {
        check(
            "fanout: every stream started",
            run["stream_failures"] == json!(0) && run["streams_started"] == run["streams"],
        );
        check(
            "fanout: every stream heard of the change",
            run["change_notified_streams"] == run["streams"],
        );
        // At most one status call per gateway per poll round (+1 for a round
        // straddling the window's edge), however many watchers.
        let rounds = run["window_s"].as_f64().unwrap_or(0.0)
            / (run["poll_interval_ms"].as_f64().unwrap_or(1.0) / 1000.0);
        check(
            "fanout: at most one status call per gateway per round",
            run["status_calls_per_gateway_max"]
                .as_f64()
                .unwrap_or(f64::MAX)
                <= rounds + 1.0,
        );
    }
    if let [small, large] = runs.as_slice() {
        check(
            "fanout: upstream calls independent of the number of watchers",
            {
                let calls = |r: &Value| r["upstream_calls_in_window"].as_u64().unwrap_or(u64::MAX);
                // Ten times the watchers, about the same calls (one round's
                // worth of slack for where the window falls).
                calls(large) <= calls(small) + 2 * small["gateways"].as_u64().unwrap_or(0) + 4
            },
        );
    }
    check(
        "signing: every algorithm measured",
        r["signing"]["signatures_per_s"]
            .as_object()
            .is_some_and(|m| m.len() == 3 && m.values().all(|v| v.as_f64().unwrap_or(0.0) > 0.0)),
    );
    check(
        "startup: reached SERVING",
        r["startup"]["start_to_serving_p50_us"]
            .as_u64()
            .unwrap_or(0)
            > 0,
    );
    (passed, failed)
}

/// The machine, for the record.
fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|m| m.trim().to_owned())
        })
        .unwrap_or_default();
    json!({
        "cpus": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        "cpu": cpu,
        "profile": if cfg!(debug_assertions) { "debug" } else { "release" },
    })
}
