//! Watching a fleet on the account's API budget: the region sweep picks
//! the cheaper calls, a change sent through the gateway wakes its resting
//! watchers, and a modify on a watched gateway checks against the fresh
//! observation instead of reading the cloud again.

use std::time::Duration;

use sslvpn_gateway::{
    emulator::{EmulatorConfig, Fixtures, QuotaSetting, QuotaTable},
    pb,
    watch::PollConfig,
};
use tokio_stream::StreamExt;

use crate::support::harness::{
    REGION, SERVER, follow, gateway_config, port_change, start_emulator, start_gateway, timings,
};

fn fleet_in(regions: &[&str], count: usize) -> Fixtures {
    Fixtures::fleet("fleet", regions, count).unwrap()
}

fn fleet(region: &str, count: usize) -> Fixtures {
    fleet_in(&[region], count)
}

/// Requests the emulator answered for `action`, whatever the outcome.
fn calls(emulator: &sslvpn_gateway::emulator::EmulatorHandle, action: &str) -> u64 {
    emulator
        .counters()
        .requests
        .get(action)
        .map_or(0, |outcomes| outcomes.values().sum())
}

fn watch_of(server: String) -> pb::WatchSslVpnServerRequest {
    watch_in(REGION, server)
}

fn watch_in(region: &str, server: String) -> pb::WatchSslVpnServerRequest {
    pb::WatchSslVpnServerRequest {
        region_id: region.into(),
        ssl_vpn_server_id: server,
        follow: true,
        ..Default::default()
    }
}

#[tokio::test]
async fn three_watched_among_many_are_read_one_by_one_and_many_by_the_regions_pages() {
    let emulator = start_emulator(EmulatorConfig {
        fixtures: fleet(REGION, 120),
        ..EmulatorConfig::default()
    })
    .await;
    let mut config = gateway_config(&emulator);
    // A slow cadence far beyond the test: only first looks and kicks poll.
    config.poll = PollConfig {
        min_interval: Duration::from_millis(25),
        max_interval: Duration::from_secs(3600),
        call_timeout: Duration::from_secs(5),
    };
    let (_server, client) = start_gateway(config).await;

    let mut streams = Vec::new();
    for i in 0..3 {
        let mut c = client.clone();
        let mut s = c
            .watch_ssl_vpn_server(watch_of(format!("vss-fleet{i}")))
            .await
            .unwrap()
            .into_inner();
        s.next().await.expect("a first message").unwrap();
        streams.push(s);
    }
    assert_eq!(
        calls(&emulator, "DescribeVpnGateways"),
        0,
        "three are cheaper one by one"
    );
    let polled = emulator.counters().gateway_polls;
    assert!(
        (0..3).all(|i| polled.contains_key(&format!("vpn-fleet{i}"))),
        "{polled:?}"
    );
    assert!(
        !polled.contains_key("vpn-fleet3"),
        "an unwatched gateway is not read: {polled:?}"
    );

    // Watch the other 117 at once: their first round lists the region.
    let singles_before = calls(&emulator, "DescribeVpnGateway");
    let mut opened = Vec::new();
    for i in 3..120 {
        let mut c = client.clone();
        opened.push(tokio::spawn(async move {
            let mut s = c
                .watch_ssl_vpn_server(watch_of(format!("vss-fleet{i}")))
                .await
                .unwrap()
                .into_inner();
            s.next().await.expect("a first message").unwrap();
            s
        }));
    }
    for o in opened {
        streams.push(o.await.unwrap());
    }
    let singles = calls(&emulator, "DescribeVpnGateway") - singles_before;
    let listings = calls(&emulator, "DescribeVpnGateways");
    assert!(listings >= 1, "the region's pages were read");
    // Resolving a watch reads its server (DescribeSslVpnServers by id); the
    // gateways themselves were read far fewer than 117 times one by one.
    assert!(
        singles < 117,
        "{singles} DescribeVpnGateway calls for 117 new gateways"
    );
}

#[tokio::test]
async fn a_change_sent_through_the_gateway_wakes_its_resting_watchers() {
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(50, 100),
        ..EmulatorConfig::default()
    })
    .await;
    let mut config = gateway_config(&emulator);
    // Idle gateways would next be read in an hour.
    config.poll = PollConfig {
        min_interval: Duration::from_millis(25),
        max_interval: Duration::from_secs(3600),
        call_timeout: Duration::from_secs(5),
    };
    let (_server, client) = start_gateway(config).await;
    // A dashboard following the server, with no operation id.
    let mut c = client.clone();
    let mut stream = c
        .watch_ssl_vpn_server(follow(SERVER))
        .await
        .unwrap()
        .into_inner();
    let first = stream.next().await.expect("a first message").unwrap();
    assert_eq!(
        first.phase(),
        pb::Phase::Succeeded,
        "nothing in flight: steady"
    );
    // Let the first look's fast rounds settle into the slow cadence.
    tokio::time::sleep(Duration::from_millis(300)).await;

    let mut c = client.clone();
    c.modify_ssl_vpn_server(port_change(SERVER, 1203))
        .await
        .unwrap();
    // Without the kick the next look would be an hour away.
    let seen = tokio::time::timeout(Duration::from_secs(20), async {
        let mut phases = Vec::new();
        while let Some(message) = stream.next().await {
            let message = message.unwrap();
            phases.push(message.phase());
            let port = message.ssl_vpn_server.as_ref().map(|s| s.port);
            if message.phase() == pb::Phase::Succeeded && port == Some(1203) {
                return phases;
            }
        }
        phases
    })
    .await
    .expect("the follower saw the change");
    assert!(seen.contains(&pb::Phase::Applying), "{seen:?}");
}

/// A gateway on its own emulator, with its admin listener, to count what a
/// step costs callers.
struct Metered {
    emulator: sslvpn_gateway::emulator::EmulatorHandle,
    _server: sslvpn_gateway::server::ServerHandle,
    client: crate::support::harness::Client,
    admin: std::net::SocketAddr,
    http: reqwest::Client,
}

impl Metered {
    /// `fast` and `slow` are the watch's cadences (busy and idle).
    async fn start(fast: Duration, slow: Duration) -> Self {
        Self::on(
            EmulatorConfig {
                timings: timings(20, 50),
                ..EmulatorConfig::default()
            },
            fast,
            slow,
        )
        .await
    }

    async fn on(emulator: EmulatorConfig, fast: Duration, slow: Duration) -> Self {
        let emulator = start_emulator(emulator).await;
        let mut config = gateway_config(&emulator);
        config.poll = PollConfig {
            min_interval: fast,
            max_interval: slow,
            call_timeout: Duration::from_secs(5),
        };
        config.admin_listen = Some("127.0.0.1:0".parse().unwrap());
        let (server, client) = start_gateway(config).await;
        let admin = server.admin_addr().unwrap();
        Self {
            emulator,
            _server: server,
            client,
            admin,
            http: reqwest::Client::new(),
        }
    }

    /// The sum of the gateway's samples whose line passes `keep`.
    async fn sum_of(&self, keep: impl Fn(&str) -> bool) -> f64 {
        let text = self
            .http
            .get(format!("http://{}/metrics", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        text.lines()
            .filter(|l| keep(l))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    }

    /// Calls the gateway spent for callers (not polls), from its /metrics.
    async fn caller_calls(&self) -> f64 {
        self.sum_of(|l| {
            l.starts_with("sslvpn_upstream_calls_total{") && !l.contains("purpose=\"poll\"")
        })
        .await
    }

    /// What the gateway's budget has left of `action` in the test region.
    async fn budget_left(&self, action: &str) -> f64 {
        let region = format!("region=\"{REGION}\"");
        let action = format!("action=\"{action}\"");
        self.sum_of(|l| {
            l.starts_with("sslvpn_upstream_budget_remaining{")
                && l.contains(&region)
                && l.contains(&action)
        })
        .await
    }

    /// Caller calls one port change costs.
    async fn modify_cost(&self, server: &str, port: u32) -> f64 {
        let before = self.caller_calls().await;
        let mut c = self.client.clone();
        c.modify_ssl_vpn_server(port_change(server, port))
            .await
            .unwrap();
        self.caller_calls().await - before
    }

    /// Starts a watch of `server` and waits for its first message.
    async fn watched(&self, server: &str) -> tonic::Streaming<pb::WatchSslVpnServerResponse> {
        let mut c = self.client.clone();
        let mut stream = c
            .watch_ssl_vpn_server(follow(server))
            .await
            .unwrap()
            .into_inner();
        stream.next().await.expect("a first message").unwrap();
        stream
    }
}

#[tokio::test]
async fn a_modify_on_a_watched_gateway_makes_one_upstream_call_and_three_otherwise() {
    // A fast cadence long enough for the observation to stay fresh.
    let gateway = Metered::start(Duration::from_secs(30), Duration::from_secs(3600)).await;

    // Not watched: resolve reads the server, the pre-flight the gateway,
    // then the modify.
    assert_eq!(gateway.modify_cost("vss-hz1peer", 1201).await, 3.0);

    // Watched and just observed: the modify alone.
    let _stream = gateway.watched(SERVER).await;
    assert_eq!(
        gateway.modify_cost(SERVER, 1202).await,
        1.0,
        "the fresh observation spared the pre-flight's reads"
    );
}

#[tokio::test]
async fn a_steady_gateway_read_moments_ago_counts_as_fresh() {
    // Freshness is the age of the last read, not of the last change: this
    // gateway is read every 100 ms but has not changed for longer than the
    // 1 s window by the time the modify comes.
    let gateway = Metered::start(Duration::from_secs(1), Duration::from_millis(100)).await;
    let _stream = gateway.watched(SERVER).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        gateway.modify_cost(SERVER, 1203).await,
        1.0,
        "read 100 ms ago, unchanged for 1.5 s: fresh"
    );
}

#[tokio::test]
async fn a_throttle_from_the_cloud_shrinks_the_budget_and_stretches_the_cadence() {
    // Two gateways watch the same server for the same while, side by side:
    // one on a cloud whose DescribeVpnGateway quota someone else has all
    // but spent (two calls an hour left to us), one on a cloud with room.
    const ACTION: &str = "DescribeVpnGateway";
    let cloud = |quota: &str| {
        let mut quotas = QuotaTable::default();
        let s: QuotaSetting = quota.parse().unwrap();
        quotas.set(s.action, s.quota);
        EmulatorConfig {
            timings: timings(20, 50),
            quotas,
            ..EmulatorConfig::default()
        }
    };
    let fast = Duration::from_millis(25);
    let slow = Duration::from_millis(100);
    let throttled = Metered::on(cloud("DescribeVpnGateway=2/1h"), fast, slow).await;
    let roomy = Metered::on(cloud("DescribeVpnGateway=off"), fast, slow).await;
    // The gateway's default budget: the documented quota.
    let quota = 600.0;

    let _watches = [throttled.watched(SERVER).await, roomy.watched(SERVER).await];
    tokio::time::sleep(Duration::from_secs(2)).await;

    let refused = throttled.emulator.counters().throttled(ACTION);
    assert!(refused > 0, "the cloud throttled the gateway");
    let spent_throttled = calls(&throttled.emulator, ACTION);
    let spent_roomy = calls(&roomy.emulator, ACTION);
    assert!(
        spent_throttled * 3 <= spent_roomy,
        "a throttled sweeper waits instead of retrying at its cadence: \
         {spent_throttled} calls ({refused} throttled) against {spent_roomy} with room"
    );
    let left = throttled.budget_left(ACTION).await;
    assert!(
        left <= quota / 2.0,
        "after a throttle only half the quota is spent for a while: {left} of {quota}"
    );
    let left = roomy.budget_left(ACTION).await;
    assert!(left > quota / 2.0 && left < quota, "{left} of {quota}");
}

#[tokio::test]
async fn three_hundred_gateways_over_three_regions_stay_under_every_quota() {
    const REGIONS: [&str; 3] = ["cn-hangzhou", "cn-shanghai", "cn-beijing"];
    const PER_REGION: usize = 100;
    // The cloud's quotas, as strict as the gateway's defaults assume.
    let mut quotas = QuotaTable::default();
    for setting in [
        "DescribeVpnGateway=600/60s",
        "DescribeVpnGateways=300/60s",
        "DescribeSslVpnServers=300/60s",
        "ModifySslVpnServer=100/60s",
    ] {
        let s: QuotaSetting = setting.parse().unwrap();
        quotas.set(s.action, s.quota);
    }
    let emulator = start_emulator(EmulatorConfig {
        fixtures: fleet_in(&REGIONS, PER_REGION),
        timings: timings(50, 200),
        quotas,
        ..EmulatorConfig::default()
    })
    .await;
    // The test harness's cadences (25 ms fast, 100 ms slow) would spend
    // far more than the quotas allow: the budget must stretch them.
    let mut config = gateway_config(&emulator);
    // 300 streams on the test's one connection.
    config.security.http2.max_concurrent_streams = 1024;
    let (_server, client) = start_gateway(config).await;

    let mut streams = Vec::new();
    for (n, region) in REGIONS.iter().enumerate() {
        for i in 0..PER_REGION {
            let server = if n == 0 {
                format!("vss-fleet{i}")
            } else {
                format!("vss-fleet{n}x{i}")
            };
            let mut c = client.clone();
            let region = (*region).to_owned();
            streams.push(tokio::spawn(async move {
                let mut s = c
                    .watch_ssl_vpn_server(watch_in(&region, server.clone()))
                    .await
                    .unwrap()
                    .into_inner();
                s.next().await.expect("a first message").unwrap();
                (region, server, s)
            }));
        }
    }
    let mut opened = Vec::new();
    for s in streams {
        opened.push(s.await.unwrap());
    }
    // One change per region, streamed to its watcher until done.
    for (region, server, stream) in opened.iter_mut().step_by(PER_REGION) {
        let mut c = client.clone();
        c.modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            region_id: region.clone(),
            ssl_vpn_server_id: server.clone(),
            port: Some(1204),
            ..Default::default()
        })
        .await
        .unwrap();
        let done = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(m) = stream.next().await {
                let m = m.unwrap();
                if m.phase() == pb::Phase::Succeeded
                    && m.ssl_vpn_server.as_ref().is_some_and(|s| s.port == 1204)
                {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(
            done,
            Ok(true),
            "the change in {region} was streamed to its end"
        );
    }
    let counters = emulator.counters();
    assert!(
        counters.throttled.is_empty(),
        "throttled by the cloud: {:?}",
        counters.throttled
    );
    assert!(
        calls(&emulator, "DescribeVpnGateways") > 0,
        "the regions were swept"
    );
}
