//! Closer to the real VPC API (issue 13), through the gateway on the
//! emulator: two-factor authentication with an EIAM 1.0 instance, dry runs
//! (`validate_only`, the CLI's `--dry-run`), the cloud's own not-found code
//! for a gateway, the codes the cloud sends while
//! a gateway is busy, the fields real answers carry (a dual-tunnel gateway's
//! SSL-VPN address, DNS servers), and which codes are the gateway's own
//! (`origin` in ErrorInfo).

use std::time::{Duration, Instant};

use prost::Message;
use sslvpn_gateway::{
    emulator::{ActionFaults, EmulatorConfig, Fault},
    pb,
};
use tonic::Code;
use tonic_types::StatusExt;

use crate::support::{
    emulator::{Call, Cloud},
    harness::*,
    procs,
};

/// A watch's FAILED `error` as a status, to read its details.
fn as_status(rpc: &tonic_types::pb::Status) -> tonic::Status {
    tonic::Status::with_details(
        Code::from(rpc.code),
        rpc.message.clone(),
        rpc.encode_to_vec().into(),
    )
}

#[tokio::test]
async fn a_gateway_that_is_gone_fails_the_watch_with_the_clouds_not_found_code() {
    let mut s = stack_with_timings(100, 100).await;
    let mut stream = s
        .client
        .watch_ssl_vpn_server(follow(SERVER))
        .await
        .unwrap()
        .into_inner();
    let first = stream.message().await.unwrap().unwrap();
    assert_eq!(first.phase(), pb::Phase::Succeeded);

    // The gateway (and so its server) is released behind the gateway's back.
    let mut fixtures = s.emulator.emulator().fixtures();
    fixtures
        .ssl_vpn_servers
        .retain(|srv| srv.vpn_gateway_id != GATEWAY);
    fixtures
        .vpn_gateways
        .retain(|gw| gw.vpn_gateway_id != GATEWAY);
    s.emulator.emulator().load_fixtures(&fixtures).unwrap();

    let rest = collect(stream).await;
    let last = rest.last().expect("a terminal message");
    assert_eq!(last.phase(), pb::Phase::Failed, "{rest:?}");
    let error = as_status(last.error.as_ref().expect("why it failed"));
    assert_eq!(error.code(), Code::NotFound);
    // DescribeVpnGateway's reference: 404 InvalidVpnGatewayInstanceId.NotFound.
    assert_eq!(reason(&error), "InvalidVpnGatewayInstanceId.NotFound");
    assert!(
        s.emulator
            .counters()
            .requests("DescribeVpnGateway", "InvalidVpnGatewayInstanceId.NotFound")
            >= 1,
        "the emulator answered the code itself"
    );
}

/// `ErrorInfo.metadata["origin"]` of a refusal.
fn origin(status: &tonic::Status) -> String {
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get("origin").cloned())
        .unwrap_or_default()
}

#[tokio::test]
async fn codes_the_gateway_invents_say_so_and_the_clouds_answers_say_theirs() {
    let mut s = stack_with_timings(100, 100).await;
    let ours = [
        // A reserved port: the document lists the ports but names no code.
        (port_change(SERVER, 443), "InvalidParameter.Port"),
        // Too small for 4 x the gateway's 50 connections: no code either.
        (
            pb::ModifySslVpnServerRequest {
                client_ip_pool: Some("192.168.200.0/29".into()),
                ..modify(SERVER)
            },
            "InvalidParameter.ClientIpPool",
        ),
        (
            pb::ModifySslVpnServerRequest {
                local_subnet: Some("127.0.0.0/8".into()),
                ..modify(SERVER)
            },
            "InvalidParameter.LocalSubnet",
        ),
        // A request that changes nothing.
        (modify(SERVER), "MissingParameter"),
        // A documented code, decided by the gateway's own rule.
        (
            pb::ModifySslVpnServerRequest {
                client_ip_pool: Some("10.0.0.0/30".into()),
                ..modify(SERVER)
            },
            "ClientIpPool.NetmaskInvalid",
        ),
    ];
    for (request, code) in ours {
        let refused = s.client.modify_ssl_vpn_server(request).await.unwrap_err();
        assert_eq!(refused.code(), Code::InvalidArgument, "{refused:?}");
        assert_eq!(reason(&refused), code);
        assert_eq!(origin(&refused), "gateway", "{code}");
    }
    assert_eq!(
        s.emulator.counters().total("ModifySslVpnServer"),
        0,
        "none of them reached the cloud"
    );

    // The peer server in the same VPC has 10.20.0.0/24: only the cloud knows.
    let conflict = s
        .client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            client_ip_pool: Some("10.20.0.0/24".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(reason(&conflict), "IpConflict");
    assert_eq!(origin(&conflict), "cloud");
    assert_eq!(
        s.emulator
            .counters()
            .requests("ModifySslVpnServer", "IpConflict"),
        1
    );
}

/// A gateway in front of a `Cloud` the test can also call directly.
async fn gateway_on(cloud: &Cloud) -> (sslvpn_gateway::server::ServerHandle, Client) {
    start_gateway(gateway_config(&cloud.handle)).await
}

#[tokio::test]
async fn two_factor_authentication_with_an_eiam1_instance_works_end_to_end() {
    let cloud = Cloud::start(EmulatorConfig {
        timings: timings(100, 200),
        ..Default::default()
    })
    .await;
    let (_server, mut client) = gateway_on(&cloud).await;
    // "If an IDaaS EIAM 1.0 instance is associated, you do not need to
    // specify an IDaaS application ID."
    let reply = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            enable_multi_factor_auth: Some(true),
            idaas_instance_id: Some("idaas-cn-hangzhou-eiam1".into()),
            idaas_region_id: Some("cn-hangzhou".into()),
            ..modify("vss-hz3eiam1")
        })
        .await
        .expect("an EIAM 1.0 instance needs no application")
        .into_inner();
    let op = reply.operation.expect("an operation");
    let messages = collect(
        client
            .watch_ssl_vpn_server(watch("vss-hz3eiam1", &op.id))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(phases(&messages).last(), Some(&pb::Phase::Succeeded));
    let status = client
        .get_ssl_vpn_server_status(status_request("vss-hz3eiam1"))
        .await
        .unwrap()
        .into_inner();
    let server = status.ssl_vpn_server.unwrap();
    assert!(server.enable_multi_factor_auth);
    assert_eq!(server.idaas_instance_id, "idaas-cn-hangzhou-eiam1");
    assert_eq!(server.idaas_application_id, "");
    assert_eq!(server.idaas_instance_version, "");
    // On the wire the version is absent for EIAM 1.0, not empty.
    let raw = cloud.server("vss-hz3eiam1").await;
    assert_eq!(raw["EnableMultiFactorAuth"], true);
    assert!(raw.get("IDaaSInstanceVersion").is_none(), "{raw}");

    // An EIAM 2.0 instance without an application: the cloud says so.
    let refused = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            enable_multi_factor_auth: Some(true),
            idaas_instance_id: Some("idaas-cn-hangzhou-eiam2".into()),
            idaas_region_id: Some("cn-hangzhou".into()),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::InvalidArgument);
    assert_eq!(reason(&refused), "MissingParam.IDaaSApplicationId");
    assert_eq!(origin(&refused), "cloud");
}

/// The wait a refusal's RetryInfo names.
fn retry_delay(status: &tonic::Status) -> Option<Duration> {
    status
        .get_error_details()
        .retry_info()
        .and_then(|r| r.retry_delay)
}

#[tokio::test]
async fn the_codes_of_a_busy_gateway_are_busy_with_retry_info_and_not_retried() {
    let mut s = stack_with_timings(100, 100).await;
    let busy = [
        (Fault::OperationConflict, "OperationConflict"),
        (Fault::TaskConflict, "TaskConflict"),
        (Fault::VpnTaskConflict, "VpnTask.CONFLICT"),
        (Fault::IncorrectStatus, "IncorrectStatus.VpnGateway"),
    ];
    for (fault, code) in busy {
        s.emulator.emulator().reset_counters();
        s.emulator
            .emulator()
            .set_faults("ModifySslVpnServer", ActionFaults::script([fault]));
        let refused = s
            .client
            .modify_ssl_vpn_server(port_change(SERVER, 1195))
            .await
            .unwrap_err();
        assert_eq!(
            refused.code(),
            Code::FailedPrecondition,
            "{code}: {refused:?}"
        );
        assert_eq!(reason(&refused), code);
        assert_eq!(origin(&refused), "cloud", "{code}");
        assert_eq!(
            retry_delay(&refused),
            Some(Duration::from_secs(10)),
            "{code}: no x-acs-retry-after, so the busy hint"
        );
        let counters = s.emulator.counters();
        assert_eq!(counters.requests("ModifySslVpnServer", code), 1, "{code}");
        assert_eq!(
            counters.total("ModifySslVpnServer"),
            1,
            "{code}: a busy gateway is not retried at once"
        );
    }
    // With the header, its wait is the one to give.
    s.emulator.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults {
            retry_after_ms_by_fault: [(Fault::OperationConflict, 2_500)].into(),
            ..ActionFaults::script([Fault::OperationConflict])
        },
    );
    let refused = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1195))
        .await
        .unwrap_err();
    assert_eq!(reason(&refused), "OperationConflict");
    assert_eq!(retry_delay(&refused), Some(Duration::from_millis(2_500)));
}

#[tokio::test]
async fn plain_throttling_is_backed_off_and_retried() {
    let emulator = start_emulator(EmulatorConfig {
        timings: timings(100, 100),
        ..EmulatorConfig::default()
    })
    .await;
    let mut config = gateway_config(&emulator);
    config.cloud.retry.base_delay = Duration::from_millis(200);
    config.cloud.retry.max_delay = Duration::from_secs(1);
    let (_server, mut client) = start_gateway(config).await;
    emulator.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults::script([Fault::ThrottlingPlain, Fault::ThrottlingPlain]),
    );
    let started = Instant::now();
    client
        .modify_ssl_vpn_server(port_change(SERVER, 1195))
        .await
        .expect("accepted on the third attempt");
    let took = started.elapsed();
    let counters = emulator.counters();
    assert_eq!(counters.requests("ModifySslVpnServer", "Throttling"), 2);
    assert_eq!(counters.requests("ModifySslVpnServer", "Success"), 1);
    // Throttling waits at least half the back-off bound: 100 ms, then 200.
    assert!(
        took >= Duration::from_millis(300),
        "backed off before retrying: {took:?}"
    );

    // Throttled to the end: RESOURCE_EXHAUSTED, the cloud's code.
    emulator.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults::script([Fault::ThrottlingPlain; 4]),
    );
    let refused = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            compress: Some(false),
            ..modify("vss-hz1peer")
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::ResourceExhausted, "{refused:?}");
    assert_eq!(reason(&refused), "Throttling");
    assert_eq!(origin(&refused), "cloud");
    assert!(retry_delay(&refused).is_some());
}

#[tokio::test]
async fn unknown_error_while_the_gateway_is_updating_is_busy() {
    let cloud = Cloud::start(EmulatorConfig {
        timings: timings(1_000, 5_000),
        ..EmulatorConfig::default()
    })
    .await;
    let (_server, mut client) = gateway_on(&cloud).await;

    // From an active gateway, UnknownError is the transient failure it is.
    cloud.handle.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults::script([Fault::UnknownError; 4]),
    );
    let transient = client
        .modify_ssl_vpn_server(port_change("vss-hz1peer", 1195))
        .await
        .unwrap_err();
    assert_eq!(transient.code(), Code::Unavailable, "{transient:?}");
    assert_eq!(reason(&transient), "UnknownError");
    assert_eq!(cloud.handle.counters().total("ModifySslVpnServer"), 4);

    // A change sent around the gateway (another tool, the console): the
    // gateway still reads active during the cloud's pick-up lag, then
    // updating. The gateway's attempts straddle that turn.
    let direct = cloud
        .call(&Call::new(
            "ModifySslVpnServer",
            &[
                ("RegionId", REGION),
                ("SslVpnServerId", SERVER),
                ("Port", "1196"),
            ],
        ))
        .await;
    assert_eq!(direct.status, 200, "{direct:?}");
    cloud.handle.emulator().set_faults(
        "ModifySslVpnServer",
        ActionFaults {
            latency_ms: 400,
            ..ActionFaults::script([Fault::UnknownError; 4])
        },
    );
    let refused = client
        .modify_ssl_vpn_server(pb::ModifySslVpnServerRequest {
            compress: Some(false),
            ..modify(SERVER)
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), Code::FailedPrecondition, "{refused:?}");
    assert_eq!(reason(&refused), "UnknownError");
    assert_eq!(origin(&refused), "cloud");
    assert_eq!(retry_delay(&refused), Some(Duration::from_secs(10)));
    let info = refused.get_error_details();
    let metadata = &info.error_info().unwrap().metadata;
    assert_eq!(
        metadata.get("gatewayStatus").map(String::as_str),
        Some("updating")
    );
}

#[tokio::test]
async fn a_dual_tunnel_gateways_server_shows_its_ssl_vpn_address_and_dns_servers() {
    let cloud = Cloud::start(EmulatorConfig {
        timings: timings(100, 200),
        ..EmulatorConfig::default()
    })
    .await;
    let (_server, mut client) = gateway_on(&cloud).await;
    const DUAL: &str = "vss-hz5dual";
    // What the cloud says: the server's InternetIp is the gateway's, which
    // on a dual-tunnel gateway is the first IPsec tunnel's address.
    assert_eq!(cloud.server(DUAL).await["InternetIp"], "47.98.10.10");

    let status = client
        .get_ssl_vpn_server_status(status_request(DUAL))
        .await
        .unwrap()
        .into_inner();
    let server = status.ssl_vpn_server.unwrap();
    assert_eq!(server.internet_ip, "47.98.10.12", "the SslVpnInternetIp");
    assert_eq!(server.dns_servers, "100.100.2.136,100.100.2.138");

    let reply = client
        .modify_ssl_vpn_server(port_change(DUAL, 1195))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(reply.ssl_vpn_server.unwrap().internet_ip, "47.98.10.12");
    let messages = collect(
        client
            .watch_ssl_vpn_server(watch(DUAL, &reply.operation.unwrap().id))
            .await
            .unwrap()
            .into_inner(),
    )
    .await;
    assert_eq!(phases(&messages).last(), Some(&pb::Phase::Succeeded));
    for m in &messages {
        let server = m.ssl_vpn_server.as_ref().expect("the server");
        assert_eq!(server.internet_ip, "47.98.10.12", "{m:?}");
    }

    // A single-tunnel gateway's address is its own.
    let primary = client
        .get_ssl_vpn_server_status(status_request(SERVER))
        .await
        .unwrap()
        .into_inner()
        .ssl_vpn_server
        .unwrap();
    assert_eq!(primary.internet_ip, "47.98.10.1");
    assert_eq!(primary.dns_servers, "");
}

fn dry_run(request: pb::ModifySslVpnServerRequest) -> pb::ModifySslVpnServerRequest {
    pb::ModifySslVpnServerRequest {
        validate_only: true,
        ..request
    }
}

#[tokio::test]
async fn a_dry_run_checks_everything_and_changes_nothing() {
    let mut s = stack_with_timings(300, 300).await;
    let reply = s
        .client
        .modify_ssl_vpn_server(dry_run(pb::ModifySslVpnServerRequest {
            client_token: "dry-run-token-1".into(),
            ..port_change(SERVER, 1195)
        }))
        .await
        .expect("every check passes")
        .into_inner();
    // Unmistakably nothing: the flag, no operation, no token used.
    assert!(reply.validate_only);
    assert!(reply.operation.is_none(), "nothing to watch");
    assert_eq!(reply.client_token, "");
    assert!(!reply.request_id.is_empty(), "the cloud ran its checks");
    assert_eq!(reply.ssl_vpn_server.unwrap().port, 1194, "as it is");

    let counters = s.emulator.counters();
    assert_eq!(
        counters.requests("ModifySslVpnServer", "DryRunOperation"),
        1
    );
    assert_eq!(counters.modifications_accepted, 0);
    assert!(counters.modifications_by_client_token.is_empty());
    let status = s
        .client
        .get_ssl_vpn_server_status(status_request(SERVER))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(status.ssl_vpn_server.unwrap().port, 1194);
    assert_eq!(status.gateway.unwrap().status(), pb::GatewayStatus::Active);

    // Nothing in flight and no lock left: the real change goes at once.
    let real = s
        .client
        .modify_ssl_vpn_server(port_change(SERVER, 1195))
        .await
        .expect("the real modify is accepted")
        .into_inner();
    assert!(!real.validate_only);
    assert!(real.operation.is_some());
    // Now the change is in flight: a dry run meets the same refusal as a
    // real modify would, from the gateway's pre-flight.
    let busy = s
        .client
        .modify_ssl_vpn_server(dry_run(pb::ModifySslVpnServerRequest {
            compress: Some(false),
            ..modify(SERVER)
        }))
        .await
        .unwrap_err();
    assert_eq!(busy.code(), Code::FailedPrecondition);
    assert_eq!(reason(&busy), "VpnGateway.Configuring");

    // A dry run of values that already hold sends nothing, as a real
    // modify would.
    let before = s.emulator.counters().total("ModifySslVpnServer");
    let held = s
        .client
        .modify_ssl_vpn_server(dry_run(pb::ModifySslVpnServerRequest {
            name: Some("hz1peer".into()),
            ..modify("vss-hz1peer")
        }))
        .await
        .unwrap()
        .into_inner();
    assert!(held.validate_only);
    assert_eq!(held.request_id, "");
    assert_eq!(s.emulator.counters().total("ModifySslVpnServer"), before);
}

#[tokio::test]
async fn a_failed_dry_run_gives_the_error_a_real_modify_would() {
    let mut s = stack_with_timings(100, 100).await;
    let eiam2_without_application = pb::ModifySslVpnServerRequest {
        enable_multi_factor_auth: Some(true),
        idaas_instance_id: Some("idaas-cn-hangzhou-eiam2".into()),
        idaas_region_id: Some("cn-hangzhou".into()),
        ..modify(SERVER)
    };
    let cases = [
        // The gateway's own rules.
        port_change(SERVER, 443),
        // The pre-flight against the current state.
        port_change("vss-hz2locked", 1195),
        port_change("vss-hz2updating", 1195),
        port_change("vss-doesnotexist", 1195),
        // The cloud's checks: another server's pool in the VPC, an EIAM
        // 2.0 instance without its application, a VPC route in the pool.
        pb::ModifySslVpnServerRequest {
            client_ip_pool: Some("10.20.0.0/24".into()),
            ..modify(SERVER)
        },
        eiam2_without_application,
        pb::ModifySslVpnServerRequest {
            client_ip_pool: Some("10.99.0.0/24".into()),
            ..modify(SERVER)
        },
    ];
    let answer = |r: Result<_, tonic::Status>| {
        let e = r.expect_err("refused");
        (e.code(), reason(&e), origin(&e))
    };
    let mut dry = Vec::new();
    for request in &cases {
        dry.push(answer(
            s.client
                .modify_ssl_vpn_server(dry_run(request.clone()))
                .await
                .map(|_| ()),
        ));
    }
    let mut real = Vec::new();
    for request in &cases {
        real.push(answer(
            s.client
                .modify_ssl_vpn_server(request.clone())
                .await
                .map(|_| ()),
        ));
    }
    assert_eq!(dry, real);
    let reasons: Vec<&str> = dry.iter().map(|(_, r, _)| r.as_str()).collect();
    assert_eq!(
        reasons,
        [
            "InvalidParameter.Port",
            "VpnGateway.FinancialLocked",
            "VpnGateway.Configuring",
            "InvalidSslVpnServerId.NotFound",
            "IpConflict",
            "MissingParam.IDaaSApplicationId",
            "EnableHaCheck.SslVpnServerClientCidrContainsVpcRouteDest",
        ]
    );
    assert_eq!(s.emulator.counters().modifications_accepted, 0);
}

#[tokio::test]
async fn the_cli_dry_run_says_nothing_was_changed() {
    let s = stack_with_timings(100, 100).await;
    let addr = format!("http://{}", s.server.local_addr());
    let run = procs::client(
        &addr,
        &[
            "modify",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--port",
            "1195",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout.starts_with(
            "dry run: every check passed (the cloud's included); nothing was changed\n"
        ),
        "{run:?}"
    );
    assert!(!run.stdout.contains("operation_id"), "{}", run.stdout);

    let json = procs::client(
        &addr,
        &[
            "--output",
            "json",
            "modify",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--port",
            "1195",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(json.code, 0, "{json:?}");
    let line = &json.json_lines()[0];
    assert_eq!(line["validate_only"], true);
    assert!(line["operation"].is_null(), "{line}");

    let refused = procs::client(
        &addr,
        &[
            "modify",
            "--region",
            REGION,
            "--server",
            SERVER,
            "--port",
            "443",
            "--dry-run",
        ],
    )
    .await;
    assert_eq!(refused.code, 2, "the same exit code as a real modify");
    assert!(
        refused.stderr.contains("InvalidParameter.Port"),
        "{refused:?}"
    );
    assert_eq!(s.emulator.counters().modifications_accepted, 0);
    assert_eq!(
        s.emulator
            .counters()
            .requests("ModifySslVpnServer", "DryRunOperation"),
        2
    );
}
