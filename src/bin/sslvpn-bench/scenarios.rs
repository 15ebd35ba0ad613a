//! The scenarios of BENCHMARKS.md. Each measures the gateway and a baseline
//! in the same run, alternating rounds so drift (other load, thermal,
//! caches) hits both sides alike, and reports the ratio.

use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant, SystemTime},
};

use serde_json::{Value, json};
use sslvpn_gateway::{
    cloud::{
        self, BudgetConfig, CloudConfig, Credentials, ModifyRequest, RetryPolicy, ServerFilter,
        StaticCredentials, VpcClient,
    },
    domain::{Changes, RegionId},
    emulator::{self, EmulatorConfig, EmulatorHandle, Fixtures, QuotaTable, Timings},
    pb::{self, ssl_vpn_service_client::SslVpnServiceClient},
    validate,
};
use tonic::{Code, transport::Channel};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

use crate::{
    gateway::{GatewayProcess, gateway_binary},
    load::{self, Request, Stats},
};

pub const REGION: &str = "cn-hangzhou";

/// How big and how long.
#[derive(Clone, Debug)]
pub struct Size {
    /// Length of one measured round.
    pub round: Duration,
    /// Rounds per side.
    pub rounds: u32,
    pub saturation_concurrency: usize,
    pub rejection_rate: u32,
    pub forwarded_rates: Vec<u32>,
    /// (streams, gateways) pairs for the fan-out.
    pub fanout: Vec<(usize, usize)>,
    pub fanout_window: Duration,
    pub poll_interval: Duration,
    pub startups: u32,
    /// Gateways, streams and the idle window of the fleet scenario.
    pub fleet: (usize, usize, Duration),
}

impl Size {
    pub fn full() -> Self {
        Self {
            round: Duration::from_secs(5),
            rounds: 3,
            saturation_concurrency: 64,
            rejection_rate: 2000,
            forwarded_rates: vec![500, 1000, 2000],
            fanout: vec![(1000, 10), (10_000, 100)],
            fanout_window: Duration::from_secs(10),
            poll_interval: Duration::from_secs(1),
            startups: 10,
            fleet: (1000, 10_000, Duration::from_secs(60)),
        }
    }

    pub fn smoke() -> Self {
        Self {
            round: Duration::from_millis(500),
            rounds: 1,
            saturation_concurrency: 8,
            rejection_rate: 200,
            forwarded_rates: vec![100],
            fanout: vec![(20, 4), (200, 4)],
            fanout_window: Duration::from_secs(2),
            poll_interval: Duration::from_millis(250),
            startups: 2,
            fleet: (60, 240, Duration::from_secs(3)),
        }
    }
}

fn region() -> RegionId {
    // A constant that passes the pattern.
    validate::region_id(REGION).expect("constant region id")
}

fn server_id(i: usize) -> String {
    format!("vss-bench{i}")
}

fn gateway_id(i: usize) -> String {
    format!("vpn-bench{i}")
}

/// `count` gateways, each with one server, each in a VPC of its own.
pub fn fixtures(count: usize) -> Result<Fixtures, String> {
    Fixtures::fleet("bench", &[REGION], count).map_err(|e| format!("bench fixtures: {e}"))
}

/// An emulator that answers at once and applies changes at once, without
/// the account's rate limits: these scenarios measure the gateway's own
/// overhead at rates (up to 2,000 modifies a second, each with its
/// DescribeVpnGateway pre-flight) far past the cloud's default quota.
pub async fn instant_emulator(gateways: usize) -> Result<EmulatorHandle, String> {
    instant_emulator_with(gateways, QuotaTable::unlimited()).await
}

/// The same, enforcing `quotas` as the cloud would.
pub async fn instant_emulator_with(
    gateways: usize,
    quotas: QuotaTable,
) -> Result<EmulatorHandle, String> {
    emulator::spawn(EmulatorConfig {
        fixtures: fixtures(gateways)?,
        timings: Timings {
            accept_lag: Duration::ZERO,
            apply_time: Duration::ZERO,
            quiet_period: Duration::ZERO,
            ..Timings::default()
        },
        quotas,
        ..EmulatorConfig::default()
    })
    .await
    .map_err(|e| format!("emulator: {e}"))
}

/// Flags that keep the gateway's own limits (and the account's budget,
/// which the fleet scenario measures) out of the measurement.
const UNLIMITED: [&str; 26] = [
    "--upstream-quota",
    "ModifySslVpnServer=1000000/1s",
    "--upstream-quota",
    "DescribeVpnGateway=1000000/1s",
    "--upstream-quota",
    "DescribeVpnGateways=1000000/1s",
    "--upstream-quota",
    "DescribeSslVpnServers=1000000/1s",
    "--concurrency-limit",
    "100000",
    "--concurrency-per-connection",
    "100000",
    "--upstream-max-attempts",
    "1",
    "--max-streams",
    "100000",
    "--max-pollers",
    "10000",
    "--http2-max-concurrent-streams",
    "10000",
    // Every connection of the driver comes from 127.0.0.1: the cap per
    // peer address would count them as one attacker.
    "--max-connections",
    "100000",
    "--max-connections-per-peer",
    "0",
    "--admin-listen",
    "off",
];

async fn channels(addr: std::net::SocketAddr, n: usize) -> Result<Vec<Channel>, String> {
    let mut out = Vec::new();
    for _ in 0..n {
        out.push(
            Channel::from_shared(format!("http://{addr}"))
                .map_err(|e| e.to_string())?
                .connect()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(out)
}

/// Round-robin over a few HTTP/2 connections.
#[derive(Clone)]
struct Pool {
    channels: Arc<Vec<Channel>>,
    next: Arc<AtomicUsize>,
}

impl Pool {
    fn pick(&self) -> Channel {
        let i = self.next.fetch_add(1, Ordering::Relaxed) % self.channels.len();
        self.channels[i].clone()
    }
}

/// Runs `a` and `b` alternately, `rounds` times each, merging per side.
async fn alternate<F, Fut>(rounds: u32, mut run: F) -> (Stats, Stats)
where
    F: FnMut(bool) -> Fut,
    Fut: std::future::Future<Output = Stats>,
{
    let (mut a, mut b) = (Stats::new(), Stats::new());
    for _ in 0..rounds {
        a.merge(&run(true).await);
        b.merge(&run(false).await);
    }
    (a, b)
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1000.0).round() / 1000.0
    } else {
        0.0
    }
}

/// Invalid modifies (validation only) vs the health check, same server.
pub async fn rejection(size: &Size) -> Result<Value, String> {
    let emu = instant_emulator(1).await?;
    let (gateway, _) = GatewayProcess::start(&emu.base_url(), &UNLIMITED).await?;
    let pool = Pool {
        channels: Arc::new(channels(gateway.addr, 4).await?),
        next: Arc::new(AtomicUsize::new(0)),
    };
    let invalid: Request = {
        let pool = pool.clone();
        Arc::new(move || {
            let mut client = SslVpnServiceClient::new(pool.pick());
            Box::pin(async move {
                let request = pb::ModifySslVpnServerRequest {
                    region_id: REGION.into(),
                    ssl_vpn_server_id: server_id(0),
                    client_ip_pool: Some("10.0.0.0/30".into()),
                    port: Some(0),
                    ..Default::default()
                };
                match client.modify_ssl_vpn_server(request).await {
                    Err(s) if s.code() == Code::InvalidArgument => Ok(()),
                    other => Err(format!("expected INVALID_ARGUMENT, got {other:?}")),
                }
            })
        })
    };
    let health: Request = {
        let pool = pool.clone();
        Arc::new(move || {
            let mut client = HealthClient::new(pool.pick());
            Box::pin(async move {
                match client
                    .check(HealthCheckRequest {
                        service: "sslvpn.v1.SslVpnService".into(),
                    })
                    .await
                {
                    Ok(r) if r.get_ref().status() == ServingStatus::Serving => Ok(()),
                    other => Err(format!("expected SERVING, got {other:?}")),
                }
            })
        })
    };
    let (sat_gw, sat_health) = alternate(size.rounds, |gw| {
        let r = if gw { invalid.clone() } else { health.clone() };
        let c = size.saturation_concurrency;
        let d = size.round;
        async move { load::saturate(&r, c, d).await }
    })
    .await;
    let (lat_gw, lat_health) = alternate(size.rounds, |gw| {
        let r = if gw { invalid.clone() } else { health.clone() };
        let rate = size.rejection_rate;
        let d = size.round;
        async move { load::open_loop(&r, rate, d).await }
    })
    .await;
    let answered = sat_gw.failed + sat_health.failed + lat_gw.failed + lat_health.failed == 0;
    gateway.stop().await;
    Ok(json!({
        "every_request_answered": answered,
        "saturation": {
            "concurrency": size.saturation_concurrency,
            "gateway_invalid_modify": sat_gw.to_json(),
            "baseline_health_check": sat_health.to_json(),
            "throughput_ratio": ratio(sat_gw.throughput(), sat_health.throughput()),
        },
        "fixed_rate": {
            "rate_per_s": size.rejection_rate,
            "gateway_invalid_modify": lat_gw.to_json(),
            "baseline_health_check": lat_health.to_json(),
        },
    }))
}

fn direct_client(emu: &EmulatorHandle) -> Result<VpcClient, String> {
    VpcClient::new(
        CloudConfig {
            endpoint: Some(emu.base_url()),
            retry: RetryPolicy {
                max_attempts: 1,
                ..RetryPolicy::default()
            },
            // The baseline is the bare client: no budget of ours.
            budget: BudgetConfig {
                quotas: Default::default(),
                ..BudgetConfig::default()
            },
            ..CloudConfig::default()
        },
        Arc::new(StaticCredentials::new(Credentials::new(
            emulator::DEMO_ACCESS_KEY_ID,
            emulator::DEMO_ACCESS_KEY_SECRET,
        ))),
    )
    .map_err(|e| e.to_string())
}

/// Valid modifies through the gateway vs the same call made directly by the
/// cloud client, at fixed rates. Each side has its own servers, and every
/// request really changes a value, so nothing is short-circuited.
pub async fn forwarded(size: &Size) -> Result<Value, String> {
    const SERVERS_PER_SIDE: usize = 200;
    let emu = instant_emulator(2 * SERVERS_PER_SIDE).await?;
    let (gateway, _) = GatewayProcess::start(&emu.base_url(), &UNLIMITED).await?;
    let pool = Pool {
        channels: Arc::new(channels(gateway.addr, 4).await?),
        next: Arc::new(AtomicUsize::new(0)),
    };
    let direct = direct_client(&emu)?;
    let next = Arc::new(AtomicU64::new(0));
    let through_gateway: Request = {
        let pool = pool.clone();
        let next = next.clone();
        Arc::new(move || {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let server = server_id((n % SERVERS_PER_SIDE as u64) as usize);
            let port = 20001 + (n / SERVERS_PER_SIDE as u64 % 2) as u32;
            let mut client = SslVpnServiceClient::new(pool.pick());
            Box::pin(async move {
                client
                    .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
                        region_id: REGION.into(),
                        ssl_vpn_server_id: server,
                        port: Some(port),
                        ..Default::default()
                    })
                    .await
                    .map(|_| ())
                    .map_err(|s| format!("{:?}: {}", s.code(), s.message()))
            })
        })
    };
    let straight: Request = {
        let next = next.clone();
        Arc::new(move || {
            let n = next.fetch_add(1, Ordering::Relaxed);
            let server = server_id(SERVERS_PER_SIDE + (n % SERVERS_PER_SIDE as u64) as usize);
            let port = 20001 + (n / SERVERS_PER_SIDE as u64 % 2) as u16;
            let direct = direct.clone();
            Box::pin(async move {
                let token = uuid::Uuid::new_v4().to_string();
                let changes = Changes {
                    port: Some(port),
                    ..Changes::default()
                };
                direct
                    .modify_ssl_vpn_server(
                        &ModifyRequest {
                            region: &region(),
                            ssl_vpn_server_id: &server,
                            client_token: &token,
                            changes: &changes,
                        },
                        None,
                    )
                    .await
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            })
        })
    };
    let mut rates = Vec::new();
    let mut answered = true;
    for &rate in &size.forwarded_rates {
        let (gw, base) = alternate(size.rounds, |gw| {
            let r = if gw {
                through_gateway.clone()
            } else {
                straight.clone()
            };
            let d = size.round;
            async move { load::open_loop(&r, rate, d).await }
        })
        .await;
        answered &= gw.failed + base.failed == 0;
        let added = |q: f64| gw.micros(q) as i64 - base.micros(q) as i64;
        rates.push(json!({
            "rate_per_s": rate,
            "gateway_modify": gw.to_json(),
            "baseline_direct_cloud_call": base.to_json(),
            "added_p50_us": added(0.5),
            "added_p99_us": added(0.99),
            "added_p999_us": added(0.999),
        }));
    }
    gateway.stop().await;
    Ok(json!({ "every_request_answered": answered, "rates": rates }))
}

/// N follow-mode watchers over G gateways: status calls per gateway per
/// poll round, the gateway's resident memory, and how long after the first
/// watcher of a gateway the last one hears of a change.
pub async fn fanout(size: &Size) -> Result<Value, String> {
    let mut results = Vec::new();
    for &(streams, gateways) in &size.fanout {
        results.push(fanout_one(size, streams, gateways).await?);
    }
    Ok(json!({ "runs": results }))
}

async fn fanout_one(size: &Size, streams: usize, gateways: usize) -> Result<Value, String> {
    let emu = instant_emulator(gateways).await?;
    let interval = humantime::format_duration(size.poll_interval).to_string();
    let mut flags: Vec<&str> = UNLIMITED.to_vec();
    flags.extend([
        "--poll-min-interval",
        &interval,
        "--poll-max-interval",
        &interval,
    ]);
    let (gateway, _) = GatewayProcess::start(&emu.base_url(), &flags).await?;
    let rss_idle = gateway.rss_kib();
    let conns = channels(gateway.addr, (streams / 200).clamp(1, 64)).await?;

    // Learn each server's gateway first, as a dashboard's first status call does.
    for g in 0..gateways {
        SslVpnServiceClient::new(conns[0].clone())
            .get_ssl_vpn_server_status(pb::GetSslVpnServerStatusRequest {
                region_id: REGION.into(),
                ssl_vpn_server_id: server_id(g),
            })
            .await
            .map_err(|s| format!("status: {s:?}"))?;
    }

    // Arrival times of the second message (the change) per stream.
    let arrivals: Arc<Mutex<Vec<(usize, Instant)>>> = Arc::new(Mutex::new(Vec::new()));
    let ready = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let g = i % gateways;
        let mut client = SslVpnServiceClient::new(conns[i % conns.len()].clone());
        let arrivals = arrivals.clone();
        let ready = ready.clone();
        let failures = failures.clone();
        tasks.push(tokio::spawn(async move {
            let stream = client
                .watch_ssl_vpn_server(pb::WatchSslVpnServerRequest {
                    region_id: REGION.into(),
                    ssl_vpn_server_id: server_id(g),
                    follow: true,
                    ..Default::default()
                })
                .await;
            let Ok(stream) = stream else {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mut stream = stream.into_inner();
            match stream.message().await {
                Ok(Some(_)) => {
                    ready.fetch_add(1, Ordering::Relaxed);
                }
                _ => {
                    failures.fetch_add(1, Ordering::Relaxed);
                    return;
                }
            }
            if let Ok(Some(_)) = stream.message().await {
                let now = Instant::now();
                arrivals
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push((g, now));
            }
            // Hold the stream until the run ends.
            let _ = stream.message().await;
        }));
    }
    let wait_ready = Instant::now();
    while ready.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed) < streams {
        if wait_ready.elapsed() > Duration::from_secs(120) {
            return Err("watchers did not all start".into());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rss_streams = gateway.rss_kib();

    // Status calls per gateway per poll round, over a quiet window.
    emu.emulator().reset_counters();
    tokio::time::sleep(size.fanout_window).await;
    let counters = emu.counters();
    let rounds = size.fanout_window.as_secs_f64() / size.poll_interval.as_secs_f64();
    let per_gateway: Vec<u64> = (0..gateways)
        .map(|g| counters.gateway_polls(&gateway_id(g)))
        .collect();
    let max_polls = per_gateway.iter().copied().max().unwrap_or(0);
    let total_polls: u64 = per_gateway.iter().sum();
    // Every upstream call of the window, listings included (a region's
    // sweep reads many gateways in one call, which no per-id count sees).
    let (window_calls, _, window_by_action) = upstream_calls(&emu);

    // A change on every gateway at once: each watcher hears of it.
    let direct = direct_client(&emu)?;
    let changed_at = Instant::now();
    for g in 0..gateways {
        let token = uuid::Uuid::new_v4().to_string();
        let changes = Changes {
            port: Some(20001),
            ..Changes::default()
        };
        direct
            .modify_ssl_vpn_server(
                &ModifyRequest {
                    region: &region(),
                    ssl_vpn_server_id: &server_id(g),
                    client_token: &token,
                    changes: &changes,
                },
                None,
            )
            .await
            .map_err(|e| e.to_string())?;
    }
    let expected = ready.load(Ordering::Relaxed);
    let wait = Instant::now();
    loop {
        let got = arrivals.lock().unwrap_or_else(|e| e.into_inner()).len();
        if got >= expected || wait.elapsed() > size.poll_interval * 4 + Duration::from_secs(10) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let arrivals = arrivals.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let mut first = vec![None::<Instant>; gateways];
    for (g, t) in &arrivals {
        first[*g] = Some(first[*g].map_or(*t, |f: Instant| f.min(*t)));
    }
    let mut delays = load::Stats::new();
    for (g, t) in &arrivals {
        if let Some(f) = first[*g] {
            let micros = u64::try_from(t.duration_since(f).as_micros())
                .unwrap_or(u64::MAX)
                .max(1);
            let _ = delays.histogram.record(micros);
        }
    }
    let notified = arrivals.len();
    let first_heard_ms = first
        .iter()
        .flatten()
        .map(|f| f.duration_since(changed_at).as_millis())
        .max()
        .unwrap_or(0);
    for t in &tasks {
        t.abort();
    }
    gateway.stop().await;
    Ok(json!({
        "streams": streams,
        "gateways": gateways,
        "streams_started": expected,
        "stream_failures": failures.load(Ordering::Relaxed),
        "poll_interval_ms": size.poll_interval.as_millis(),
        "window_s": size.fanout_window.as_secs_f64(),
        "status_calls_per_gateway_max": max_polls,
        "status_calls_total": total_polls,
        "upstream_calls_in_window": window_calls,
        "upstream_calls_by_action": window_by_action,
        "status_calls_per_gateway_per_round": ((max_polls as f64 / rounds) * 100.0).round() / 100.0,
        "rss_idle_kib": rss_idle,
        "rss_with_streams_kib": rss_streams,
        "change_notified_streams": notified,
        "fanout_delay_p50_us": delays.micros(0.5),
        "fanout_delay_p99_us": delays.micros(0.99),
        "fanout_delay_max_us": delays.histogram.max(),
        "change_to_first_watcher_max_ms": first_heard_ms,
    }))
}

/// Upstream requests the emulator answered, per action, and how many of
/// them it throttled.
fn upstream_calls(emu: &EmulatorHandle) -> (u64, u64, Value) {
    let counters = emu.counters();
    let mut total = 0;
    let mut throttled = 0;
    let mut by_action = serde_json::Map::new();
    for (action, outcomes) in &counters.requests {
        let n: u64 = outcomes.values().sum();
        throttled += outcomes
            .iter()
            .filter(|(o, _)| o.contains("Throttling"))
            .map(|(_, n)| *n)
            .sum::<u64>();
        total += n;
        by_action.insert(action.clone(), json!(n));
    }
    (total, throttled, Value::Object(by_action))
}

/// A fleet on the account's budget: `gateways` in one region, `streams`
/// following them, through the gateway (region sweeps, the default budget
/// and cadences) and, side by side on a second emulator with the same
/// fixtures, the baseline: one poller per gateway (DescribeVpnGateway and
/// DescribeSslVpnServers every slow interval, as the per-gateway pollers
/// did once idle).
pub async fn fleet(size: &Size) -> Result<Value, String> {
    let (gateways, streams, window) = size.fleet;
    // The cloud's default quotas on, on both sides.
    let emu = instant_emulator_with(gateways, QuotaTable::default()).await?;
    let baseline_emu = instant_emulator_with(gateways, QuotaTable::default()).await?;
    // The gateway's own caps out of the way; its budget and cadences as
    // shipped.
    let flags = [
        "--concurrency-limit",
        "100000",
        "--concurrency-per-connection",
        "100000",
        "--max-streams",
        "100000",
        "--max-pollers",
        "10000",
        "--http2-max-concurrent-streams",
        "10000",
        "--admin-listen",
        "off",
        // Every new watch resolves its server once (one DescribeSslVpnServers
        // each): at the default assumption of 300 a minute, 1,000 new
        // servers alone would take over three minutes to open.
        "--upstream-quota",
        "DescribeSslVpnServers=1200/60s",
        "--max-connections",
        "100000",
        "--max-connections-per-peer",
        "0",
    ];
    let (gateway, _) = GatewayProcess::start(&emu.base_url(), &flags).await?;
    let rss_idle = gateway.rss_kib();
    let conns = channels(gateway.addr, (streams / 200).clamp(1, 64)).await?;
    let ready = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    // Per stream: when it saw the change on gateway 0 SUCCEEDED.
    let done: Arc<Mutex<Vec<Instant>>> = Arc::new(Mutex::new(Vec::new()));
    let mut tasks = Vec::new();
    for i in 0..streams {
        let g = i % gateways;
        let mut client = SslVpnServiceClient::new(conns[i % conns.len()].clone());
        let (ready, failures, done) = (ready.clone(), failures.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            let Ok(stream) = client
                .watch_ssl_vpn_server(pb::WatchSslVpnServerRequest {
                    region_id: REGION.into(),
                    ssl_vpn_server_id: server_id(g),
                    follow: true,
                    ..Default::default()
                })
                .await
            else {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            };
            let mut stream = stream.into_inner();
            if !matches!(stream.message().await, Ok(Some(_))) {
                failures.fetch_add(1, Ordering::Relaxed);
                return;
            }
            ready.fetch_add(1, Ordering::Relaxed);
            while let Ok(Some(m)) = stream.message().await {
                let port = m.ssl_vpn_server.as_ref().map(|s| s.port);
                if m.phase() == pb::Phase::Succeeded && port == Some(20002) {
                    done.lock()
                        .unwrap_or_else(|e| e.into_inner())
                        .push(Instant::now());
                }
            }
        }));
    }
    let wait_ready = Instant::now();
    while ready.load(Ordering::Relaxed) + failures.load(Ordering::Relaxed) < streams {
        if wait_ready.elapsed() > Duration::from_secs(300) {
            return Err("watchers did not all start".into());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let rss_streams = gateway.rss_kib();
    // Let the first looks settle into the slow cadence.
    tokio::time::sleep(Duration::from_secs(12).min(window)).await;

    // The idle window, and the baseline's pollers beside it.
    emu.emulator().reset_counters();
    baseline_emu.emulator().reset_counters();
    let direct = direct_client(&baseline_emu)?;
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pollers = Vec::new();
    for g in 0..gateways {
        let (direct, stop) = (direct.clone(), stop.clone());
        pollers.push(tokio::spawn(async move {
            // Spread over the interval, as pollers started at different times are.
            let slow = Duration::from_secs(10);
            let offset = slow.mul_f64((g as f64) / (gateways.max(1) as f64));
            tokio::time::sleep(offset).await;
            while !stop.load(Ordering::Relaxed) {
                let _ = direct
                    .describe_vpn_gateway(&region(), &gateway_id(g), None)
                    .await;
                let _ = direct
                    .describe_ssl_vpn_servers(
                        &region(),
                        &ServerFilter::by_gateway(gateway_id(g)),
                        cloud::PageRequest::default(),
                        None,
                    )
                    .await;
                tokio::time::sleep(slow).await;
            }
        }));
    }
    tokio::time::sleep(window).await;
    stop.store(true, Ordering::Relaxed);
    let (idle_calls, idle_throttled, idle_by_action) = upstream_calls(&emu);
    let (base_calls, base_throttled, base_by_action) = upstream_calls(&baseline_emu);
    for p in &pollers {
        p.abort();
    }
    let per_min = |n: u64| (n as f64 * 60.0 / window.as_secs_f64()).round();

    // A change through the gateway on a watched gateway: until every one
    // of its watchers has seen it SUCCEEDED (the instant emulator
    // completes it as it accepts it).
    let mut client = SslVpnServiceClient::new(conns[0].clone());
    let sent = Instant::now();
    client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            region_id: REGION.into(),
            ssl_vpn_server_id: server_id(0),
            port: Some(20002),
            ..Default::default()
        })
        .await
        .map_err(|s| format!("modify: {s:?}"))?;
    let accepted = sent.elapsed();
    let watchers_of_0 = (0..streams).filter(|i| i % gateways == 0).count();
    let wait = Instant::now();
    while done.lock().unwrap_or_else(|e| e.into_inner()).len() < watchers_of_0
        && wait.elapsed() < Duration::from_secs(30)
    {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let seen: Vec<Instant> = done.lock().unwrap_or_else(|e| e.into_inner()).clone();
    let last_seen_ms = seen
        .iter()
        .map(|t| t.duration_since(sent).as_millis())
        .max()
        .unwrap_or(0);
    // Modifies on watched gateways through the gateway, one after the
    // other, beside the same call made directly on the baseline's emulator.
    let mut through = load::Stats::new();
    let mut directly = load::Stats::new();
    let sample = 40.min(gateways.saturating_sub(1));
    for g in 1..=sample {
        let started = Instant::now();
        let done = client
            .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
                region_id: REGION.into(),
                ssl_vpn_server_id: server_id(g),
                port: Some(20003),
                ..Default::default()
            })
            .await;
        if done.is_ok() {
            let _ = through.histogram.record(
                u64::try_from(started.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
        let token = uuid::Uuid::new_v4().to_string();
        let changes = Changes {
            port: Some(20003),
            ..Changes::default()
        };
        let started = Instant::now();
        let done = direct
            .modify_ssl_vpn_server(
                &ModifyRequest {
                    region: &region(),
                    ssl_vpn_server_id: &server_id(g),
                    client_token: &token,
                    changes: &changes,
                },
                None,
            )
            .await;
        if done.is_ok() {
            let _ = directly.histogram.record(
                u64::try_from(started.elapsed().as_micros())
                    .unwrap_or(u64::MAX)
                    .max(1),
            );
        }
    }
    let (_, throttled_total, _) = upstream_calls(&emu);
    for t in &tasks {
        t.abort();
    }
    gateway.stop().await;
    let per_stream_kib = match (rss_idle, rss_streams) {
        (Some(a), Some(b)) if streams > 0 => {
            ((b.saturating_sub(a)) as f64 / streams as f64 * 10.0).round() / 10.0
        }
        _ => 0.0,
    };
    Ok(json!({
        "gateways": gateways,
        "streams": streams,
        "streams_started": ready.load(Ordering::Relaxed),
        "stream_failures": failures.load(Ordering::Relaxed),
        "window_s": window.as_secs_f64(),
        "idle_calls_per_min": per_min(idle_calls),
        "idle_calls_by_action": idle_by_action,
        "idle_throttled": idle_throttled,
        "baseline_idle_calls_per_min": per_min(base_calls),
        "baseline_calls_by_action": base_by_action,
        "baseline_throttled": base_throttled,
        "ratio_calls": ratio(per_min(idle_calls), per_min(base_calls)),
        "change_accepted_ms": accepted.as_millis(),
        "change_watchers": watchers_of_0,
        "change_watchers_succeeded": seen.len(),
        "change_to_last_watcher_succeeded_ms": last_seen_ms,
        "watched_modifies": through.histogram.len(),
        "watched_modify_p50_us": through.micros(0.5),
        "direct_modify_p50_us": directly.micros(0.5),
        "watched_modify_added_p50_us": through.micros(0.5).saturating_sub(directly.micros(0.5)),
        "throttled_total": throttled_total,
        "rss_idle_kib": rss_idle,
        "rss_with_streams_kib": rss_streams,
        "rss_per_stream_kib": per_stream_kib,
    }))
}

/// Signatures per second for a typical modify: V3, V1, and the bare
/// HMAC-SHA256 of a same-sized message as the floor.
pub async fn signing(size: &Size) -> Result<Value, String> {
    use hmac::{Hmac, Mac};
    let credentials = Credentials::new("LTAI5tFAKEACCESSKEYID", "FakeSecret0123456789abcdefABCDEF");
    let params: Vec<(String, String)> = [
        ("RegionId", REGION),
        ("SslVpnServerId", "vss-bp18q7hzj6largv4v1234"),
        ("ClientToken", "02fb3da4-130e-11e9-8e44-0016e04115b"),
        ("ClientIpPool", "10.10.0.0/24"),
        ("LocalSubnet", "192.168.0.0/24,172.16.1.0/24"),
        ("Port", "1194"),
        ("Proto", "UDP"),
        ("Compress", "false"),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    let headers = vec![
        ("x-acs-action".to_owned(), "ModifySslVpnServer".to_owned()),
        ("x-acs-version".to_owned(), "2016-04-28".to_owned()),
    ];
    let date = cloud::sign::format_date(SystemTime::now());
    let nonce = cloud::sign::new_nonce();
    let per_round = size.round;
    let mut rows = serde_json::Map::new();
    for (name, f) in [
        ("v3_acs3_hmac_sha256", 0u8),
        ("v1_hmac_sha1", 1u8),
        ("baseline_bare_hmac_sha256", 2u8),
    ] {
        let mut count = 0u64;
        let mut elapsed = Duration::ZERO;
        for _ in 0..size.rounds {
            let started = Instant::now();
            while started.elapsed() < per_round {
                for _ in 0..100 {
                    match f {
                        0 => {
                            let signed = cloud::sign::sign_v3(
                                &cloud::sign::V3Input {
                                    method: "POST",
                                    host: "vpc.cn-hangzhou.aliyuncs.com",
                                    path: "/",
                                    query: &params,
                                    headers: &headers,
                                    body: b"",
                                    date: &date,
                                    nonce: &nonce,
                                },
                                &credentials,
                            );
                            std::hint::black_box(signed.signature.len());
                        }
                        1 => {
                            let signed = cloud::sign::sign_v1(
                                &cloud::sign::V1Input {
                                    method: "POST",
                                    action: "ModifySslVpnServer",
                                    version: "2016-04-28",
                                    params: &params,
                                    date: &date,
                                    nonce: &nonce,
                                    format: "json",
                                },
                                &credentials,
                            );
                            std::hint::black_box(signed.signature.len());
                        }
                        _ => {
                            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(
                                b"FakeSecret0123456789abcdefABCDEF",
                            )
                            .map_err(|e| e.to_string())?;
                            mac.update(&[b'x'; 82]);
                            std::hint::black_box(mac.finalize().into_bytes().len());
                        }
                    }
                    count += 1;
                }
            }
            elapsed += started.elapsed();
            tokio::task::yield_now().await;
        }
        rows.insert(
            name.to_owned(),
            json!((count as f64 / elapsed.as_secs_f64()).round()),
        );
    }
    Ok(json!({ "signatures_per_s": rows }))
}

/// Process start to health SERVING, and idle resident memory; the baseline
/// is the same binary starting and exiting (`--version`).
pub async fn startup(size: &Size) -> Result<Value, String> {
    let emu = instant_emulator(1).await?;
    let mut serving = load::Stats::new();
    let mut baseline = load::Stats::new();
    let mut rss = Vec::new();
    for _ in 0..size.startups {
        let (gateway, took) =
            GatewayProcess::start(&emu.base_url(), &["--admin-listen", "127.0.0.1:0"]).await?;
        let _ = serving
            .histogram
            .record(u64::try_from(took.as_micros()).unwrap_or(u64::MAX).max(1));
        tokio::time::sleep(Duration::from_millis(300)).await;
        rss.extend(gateway.rss_kib());
        gateway.stop().await;

        let started = Instant::now();
        let status = tokio::process::Command::new(gateway_binary()?)
            .arg("--version")
            .stdout(std::process::Stdio::null())
            .status()
            .await
            .map_err(|e| e.to_string())?;
        if !status.success() {
            return Err("--version failed".into());
        }
        let _ = baseline.histogram.record(
            u64::try_from(started.elapsed().as_micros())
                .unwrap_or(u64::MAX)
                .max(1),
        );
    }
    rss.sort_unstable();
    Ok(json!({
        "start_to_serving_p50_us": serving.micros(0.5),
        "start_to_serving_max_us": serving.histogram.max(),
        "baseline_exec_and_exit_p50_us": baseline.micros(0.5),
        "idle_rss_kib_median": rss.get(rss.len() / 2),
    }))
}
