//! The real `sslvpn-gateway` binary as separate processes: the command-line
//! client, and gateways that can be signalled. Every process gets a cleared
//! environment (nothing from the developer's shell leaks in) plus what the
//! test gives it, listens on 127.0.0.1 only, and is killed if a test fails.

use std::{process::Stdio, time::Duration};

use serde_json::Value;
use tokio::{
    io::{AsyncBufReadExt, BufReader, Lines},
    process::{Child, ChildStdout, Command},
};

pub const BIN: &str = env!("CARGO_BIN_EXE_sslvpn-gateway");

/// What a finished run printed, and its exit code.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    /// Every stdout line parsed as JSON (panics on a line that is not).
    pub fn json_lines(&self) -> Vec<Value> {
        self.stdout
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l:?}")))
            .collect()
    }
}

/// The binary with a clean environment.
pub fn command() -> Command {
    let mut c = Command::new(BIN);
    c.env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    c
}

/// Runs `sslvpn-gateway ARGS...` with `env` to completion (bounded).
pub async fn run(args: &[&str], env: &[(&str, &str)]) -> Run {
    let mut c = command();
    c.args(args).envs(env.iter().copied());
    let output = tokio::time::timeout(Duration::from_secs(30), c.output())
        .await
        .expect("the binary finishes in time")
        .expect("the binary runs");
    Run {
        code: output.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

/// Runs `sslvpn-gateway client --addr ADDR ARGS...` to completion (bounded).
pub async fn client(addr: &str, args: &[&str]) -> Run {
    let mut all = vec!["client", "--addr", addr];
    all.extend_from_slice(args);
    run(&all, &[]).await
}

/// `sslvpn-gateway serve` as a process of its own, on 127.0.0.1:0 and
/// without its admin listener (gateways on one host would fight over its
/// default port).
pub struct Gateway {
    pub child: Child,
    /// The bound address, as the gateway printed it.
    pub addr: String,
    /// The rest of stdout, kept open so the process never sees a closed pipe.
    _stdout: Lines<BufReader<ChildStdout>>,
}

impl Gateway {
    /// Starts `serve ARGS...` with `env` and waits for its address.
    pub async fn start(args: &[&str], env: &[(&str, &str)]) -> Gateway {
        let mut c = command();
        c.args(["serve", "--listen", "127.0.0.1:0", "--admin-listen", "off"])
            .args(args)
            .envs(env.iter().copied())
            // Logs are not read; keep them from filling the pipe.
            .stderr(Stdio::null());
        let mut child = c.spawn().expect("the gateway starts");
        let stdout = child.stdout.take().expect("piped stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = tokio::time::timeout(Duration::from_secs(20), async {
            while let Some(line) = lines.next_line().await.expect("read stdout") {
                if let Some(rest) = line.strip_prefix("gateway listening on ") {
                    return rest.split_whitespace().next().map(str::to_owned);
                }
            }
            None
        })
        .await
        .expect("the gateway prints its address in time")
        .expect("the gateway prints its address");
        Gateway {
            child,
            addr,
            _stdout: lines,
        }
    }

    /// A replica in front of `endpoint`, with the credentials from the
    /// environment and quick polls.
    pub async fn replica(endpoint: &str, key_id: &str, secret: &str) -> Gateway {
        Gateway::start(
            &[
                "--endpoint",
                endpoint,
                "--poll-min-interval",
                "50ms",
                "--poll-max-interval",
                "200ms",
                "--shutdown-grace",
                "3s",
            ],
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret),
            ],
        )
        .await
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sends `signal` (`TERM`, `HUP`...) through kill(1): no libc in the
    /// tests.
    pub async fn signal(&self, signal: &str) {
        let pid = self.child.id().expect("still running");
        let status = Command::new("kill")
            .args([format!("-{signal}"), pid.to_string()])
            .status()
            .await
            .expect("kill runs");
        assert!(status.success(), "kill -{signal} {pid} failed");
    }
}
