//! The gateway under test, as its own process: so its memory can be read
//! from /proc and its CPU is not the driver's.

use std::{
    net::SocketAddr,
    path::PathBuf,
    process::Stdio,
    time::{Duration, Instant},
};

use sslvpn_gateway::emulator;
use tokio::process::{Child, Command};
use tonic::transport::Channel;
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

pub struct GatewayProcess {
    child: Child,
    pub addr: SocketAddr,
}

/// The `sslvpn-gateway` binary next to this one, or `SSLVPN_BENCH_GATEWAY`.
pub fn gateway_binary() -> Result<PathBuf, String> {
    // Another build of the gateway, to compare two versions in one run.
    if let Some(bin) = std::env::var_os("SSLVPN_BENCH_GATEWAY") {
        return Ok(PathBuf::from(bin));
    }
    let me = std::env::current_exe().map_err(|e| e.to_string())?;
    let bin = me.with_file_name("sslvpn-gateway");
    if bin.exists() {
        Ok(bin)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release)",
            bin.display()
        ))
    }
}

/// A free loopback port (released before the gateway binds it).
pub fn free_port() -> Result<u16, String> {
    let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
    Ok(l.local_addr().map_err(|e| e.to_string())?.port())
}

impl GatewayProcess {
    /// Starts `serve` against the emulator at `endpoint` with `extra` flags,
    /// and waits until health answers SERVING. Returns the process and the
    /// time from spawn to SERVING.
    pub async fn start(endpoint: &str, extra: &[&str]) -> Result<(Self, Duration), String> {
        let port = free_port()?;
        let addr = SocketAddr::from(([127, 0, 0, 1], port));
        let started = Instant::now();
        let child = Command::new(gateway_binary()?)
            .arg("serve")
            .arg("--listen")
            .arg(addr.to_string())
            .arg("--endpoint")
            .arg(endpoint)
            .args(extra)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", emulator::DEMO_ACCESS_KEY_ID)
            .env(
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                emulator::DEMO_ACCESS_KEY_SECRET,
            )
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .map_err(|e| format!("cannot start the gateway: {e}"))?;
        let process = Self { child, addr };
        let took = wait_serving(addr, started).await?;
        Ok((process, took))
    }

    /// Resident memory now, in KiB.
    pub fn rss_kib(&self) -> Option<u64> {
        rss_kib(self.child.id()?)
    }

    pub async fn stop(mut self) {
        let _ = self.child.start_kill();
        let _ = self.child.wait().await;
    }
}

/// Polls the health service until SERVING; the time since `started`.
pub async fn wait_serving(addr: SocketAddr, started: Instant) -> Result<Duration, String> {
    let deadline = started + Duration::from_secs(20);
    loop {
        if Instant::now() > deadline {
            return Err(format!("the gateway on {addr} never became SERVING"));
        }
        if let Ok(channel) = Channel::from_shared(format!("http://{addr}"))
            .map_err(|e| e.to_string())?
            .connect()
            .await
        {
            let reply = HealthClient::new(channel)
                .check(HealthCheckRequest {
                    service: "sslvpn.v1.SslVpnService".into(),
                })
                .await;
            if let Ok(reply) = reply
                && reply.into_inner().status() == ServingStatus::Serving
            {
                return Ok(started.elapsed());
            }
        }
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
}

/// VmRSS of a process, in KiB.
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}
