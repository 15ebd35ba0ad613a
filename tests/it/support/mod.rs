//! Helpers shared by the integration tests: the gateway stack
//! (`harness`), the binary as separate processes (`procs`), TLS and tokens
//! (`secure`), a signing client for the emulator (`emulator`), a fake VPC
//! endpoint (`fake_upstream`) and the wire encoding both of those speak
//! (`wire`); here, what several of them need: files, captured logs,
//! loopback ports and peers, `/metrics`.
//!
//! Every test of this crate is a thread of one process. Nothing here is
//! process-wide: ports are picked by the kernel (or held, see
//! [`ClosedPort`]), files live in a directory per test, and the environment
//! is never written (the credential chain takes it as a map; the binary's
//! processes get theirs explicitly). The few tests that must install
//! process-wide state run in a process of their own ([`in_own_process`]).

pub mod emulator;
pub mod fake_upstream;
pub mod harness;
pub mod procs;
pub mod secure;
pub mod wire;

use std::{
    future::Future,
    net::{IpAddr, Ipv4Addr, SocketAddr},
    path::PathBuf,
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use tokio::net::{TcpSocket, TcpStream};

/// Set in the process [`in_own_process`] starts, to the test it runs.
const OWN_PROCESS: &str = "SSLVPN_IT_OWN_PROCESS";

/// Whether the calling test should run its body here.
///
/// A test that installs process-wide state (the global tracing subscriber,
/// OpenTelemetry's tracer provider and propagator), that needs a scoped
/// subscriber to see every event (tracing caches each callsite's interest
/// process-wide, from whichever thread reaches it first), or that asserts
/// on the process-wide metrics registry would both disturb the other tests
/// and see their traffic. Such a test calls this first, with its full name
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
    // "1 passed" also catches a name that matches no test.
    assert!(
        output.status.success() && stdout.contains("test result: ok. 1 passed"),
        "{test} failed in its own process ({}):\n{stdout}\n{stderr}",
        output.status
    );
    false
}

/// A directory of files that disappears with the test.
pub struct Files {
    dir: PathBuf,
}

impl Files {
    pub fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "sslvpn-it-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Self { dir }
    }

    /// Writes `name` (a relative path; missing directories are made).
    pub fn write(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.dir.join(name);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        // Write-then-rename, as an operator's deploy tool would: a reload
        // never sees half a file.
        let file_name = path.file_name().unwrap().to_string_lossy();
        let tmp = path.with_file_name(format!(".{file_name}.tmp"));
        std::fs::write(&tmp, contents).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
        path
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    /// The directory itself.
    pub fn dir(&self) -> &std::path::Path {
        &self.dir
    }
}

impl Drop for Files {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Captured log output: a `tracing_subscriber` writer.
#[derive(Clone, Default)]
pub struct Capture(Arc<Mutex<Vec<u8>>>);

impl Capture {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

impl std::io::Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Serves `app` on 127.0.0.1 with a port the kernel picks, until the
/// process ends.
pub async fn serve_http(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

/// A loopback port where a connection is refused, for as long as this
/// lives: bound but never listening, so no other test's listener can be
/// given the port meanwhile (a port merely found free a moment ago can).
pub struct ClosedPort {
    _socket: TcpSocket,
    pub addr: SocketAddr,
}

impl ClosedPort {
    pub fn new() -> Self {
        let socket = TcpSocket::new_v4().unwrap();
        socket.bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = socket.local_addr().unwrap();
        Self {
            _socket: socket,
            addr,
        }
    }
}

/// Polls until `check` holds, for at most `limit`; `what` names the
/// condition if it never does.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    panic!("{what}: not within {limit:?}");
}

/// Another peer: a second loopback address (Linux routes all of
/// 127.0.0.0/8 to lo), so per-address limits see a stranger.
pub const OTHER_PEER: IpAddr = IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2));

/// A TCP connection to `to` from `from` (a loopback address).
pub async fn connect_from(from: IpAddr, to: SocketAddr) -> std::io::Result<TcpStream> {
    let socket = TcpSocket::new_v4()?;
    socket.bind(SocketAddr::new(from, 0))?;
    socket.connect(to).await
}

/// A plaintext channel to `url` whose connections come from `from`.
pub async fn channel_from(from: IpAddr, url: String) -> tonic::transport::Channel {
    tonic::transport::Endpoint::from_shared(url)
        .unwrap()
        .local_address(Some(from))
        .connect()
        .await
        .unwrap()
}

/// The value of one series in Prometheus text (`None` when absent).
pub fn sample(metrics: &str, series: &str) -> Option<f64> {
    metrics.lines().find_map(|line| {
        let (name, value) = line.rsplit_once(' ')?;
        (name == series).then(|| value.parse().ok())?
    })
}

/// A gateway's `/metrics`, as a scraper reads it.
pub async fn scrape(http: &reqwest::Client, admin: SocketAddr) -> String {
    http.get(format!("http://{admin}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}
