//! The VPC client against a fake upstream on 127.0.0.1: signatures the fake
//! verifies on its own, parameters, retries and their limits, error
//! decoding, the typed operations, and what reaches the logs.

use std::{
    collections::HashMap,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::Duration,
};

use serde_json::json;
use sslvpn_gateway::{
    cloud::{
        CloudConfig, CloudError, CredentialProvider, Credentials, GatewayFilter, ModifyRequest,
        PageRequest, RetryPolicy, ServerFilter, SignatureVersion, StaticCredentials, VpcClient,
        credentials::BoxFuture,
    },
    domain::{Changes, Cipher, Protocol, RegionId},
    validate,
};
use tokio::time::Instant;

use crate::support::{
    ClosedPort,
    fake_upstream::{FakeUpstream, Reply},
};

const AK: &str = "LTAI5tFAKEACCESSKEYID";
const SECRET: &str = "FakeSecret0123456789abcdefABCDEF";
const TOKEN: &str = "CAIS.FAKE+STS/Token==";
const SERVER: &str = "vss-bp18q7hzj6largv4v1234";

fn region() -> RegionId {
    validate::region_id("cn-hangzhou").unwrap()
}

/// Short back-offs so the suite stays fast.
fn fast_retries(max_attempts: u32) -> RetryPolicy {
    RetryPolicy {
        max_attempts,
        base_delay: Duration::from_millis(5),
        max_delay: Duration::from_millis(20),
        max_total: Duration::from_secs(5),
    }
}

fn config(up: &FakeUpstream, retry: RetryPolicy) -> CloudConfig {
    CloudConfig {
        endpoint: Some(up.url()),
        retry,
        ..CloudConfig::default()
    }
}

fn client_with(config: CloudConfig, credentials: Credentials) -> VpcClient {
    VpcClient::new(config, Arc::new(StaticCredentials::new(credentials))).unwrap()
}

fn client(up: &FakeUpstream) -> VpcClient {
    client_with(config(up, fast_retries(4)), Credentials::new(AK, SECRET))
}

fn server_json(request_id: &str) -> serde_json::Value {
    json!({
        "RequestId": request_id,
        "SslVpnServerId": SERVER,
        "VpnGatewayId": "vpn-bp1q8bgx4xnkm2ogj1234",
        "RegionId": "cn-hangzhou",
        "Name": "sslvpn test~/ä",
        "LocalSubnet": "10.20.20.0/24",
        "ClientIpPool": "10.30.30.0/24",
        "Proto": "UDP",
        "Port": 1195,
        "Cipher": "AES-256-CBC",
        "Compress": false,
        "Connections": 2,
        "MaxConnections": 5,
        "InternetIp": "47.98.1.1",
        "CreateTime": 1492753580000i64,
        "EnableMultiFactorAuth": false,
        "IDaaSInstanceId": "",
        "ResourceGroupId": "rg-1"
    })
}

fn changes() -> Changes {
    Changes {
        name: Some("sslvpn test~/ä".into()),
        port: Some(1195),
        compress: Some(false),
        ..Changes::default()
    }
}

async fn modify(
    client: &VpcClient,
    deadline: Option<Instant>,
) -> Result<sslvpn_gateway::cloud::ModifyResponse, CloudError> {
    let region = region();
    let changes = changes();
    client
        .modify_ssl_vpn_server(
            &ModifyRequest {
                region: &region,
                ssl_vpn_server_id: SERVER,
                client_token: "token-1234",
                changes: &changes,
            },
            deadline,
        )
        .await
}

#[tokio::test]
async fn a_dry_run_sends_dry_run_and_reads_dry_run_operation_as_passed() {
    let up = FakeUpstream::start(SECRET).await;
    let client = client(&up);
    let region = region();
    let changes = changes();
    let request = ModifyRequest {
        region: &region,
        ssl_vpn_server_id: SERVER,
        client_token: "",
        changes: &changes,
    };
    up.push([Reply::error(400, "DryRunOperation", "DRY-OK")]);
    let request_id = client
        .dry_run_modify_ssl_vpn_server(&request, None)
        .await
        .expect("DryRunOperation: every check passed");
    assert_eq!(request_id, "DRY-OK");
    let reqs = up.requests();
    assert_eq!(reqs.len(), 1, "not retried");
    assert_eq!(reqs[0].param("DryRun"), Some("true"));
    assert_eq!(reqs[0].param("Port"), Some("1195"));
    assert_eq!(reqs[0].param("ClientToken"), None);

    // A failed check is the cloud's refusal, as for a real modify.
    up.push([Reply::error(400, "IpConflict", "DRY-NO")]);
    let err = client
        .dry_run_modify_ssl_vpn_server(&request, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "IpConflict");
    assert!(err.is_cloud_answer());

    // Success would mean the cloud ignored DryRun: never "nothing changed".
    up.push([Reply::ok(server_json("DRY-APPLIED"))]);
    let err = client
        .dry_run_modify_ssl_vpn_server(&request, None)
        .await
        .unwrap_err();
    assert_eq!(err.request_id(), Some("DRY-APPLIED"));
    assert!(err.message().contains("may have been applied"), "{err}");
}

#[tokio::test]
async fn modify_sends_only_the_set_fields_signed_and_decodes_the_answer() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([Reply::ok(server_json("REQ-OK"))]);
    let answer = modify(&client(&up), None).await.unwrap();

    assert_eq!(answer.request_id, "REQ-OK");
    assert_eq!(answer.server.port, 1195);
    assert_eq!(answer.server.proto, Some(Protocol::Udp));
    assert_eq!(answer.server.cipher, Some(Cipher::Aes256Cbc));
    assert_eq!(answer.server.max_connections, 5);

    let reqs = up.requests();
    assert_eq!(reqs.len(), 1);
    let req = &reqs[0];
    assert_eq!(req.signature_problem, None);
    assert_eq!(req.method, "POST");
    assert_eq!(req.action, "ModifySslVpnServer");
    assert_eq!(req.header("x-acs-version"), Some("2016-04-28"));
    assert_eq!(req.header("host"), Some(up.addr.to_string().as_str()));
    assert_eq!(req.header("content-length"), Some("0"));
    let mut params = req.params.clone();
    params.sort();
    let expected: Vec<(String, String)> = [
        ("ClientToken", "token-1234"),
        ("Compress", "false"),
        ("Name", "sslvpn test~/ä"),
        ("Port", "1195"),
        ("RegionId", "cn-hangzhou"),
        ("SslVpnServerId", SERVER),
    ]
    .iter()
    .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
    .collect();
    assert_eq!(params, expected);
    // RFC 3986 on the wire too: %20 for the space, ~ literal.
    assert!(
        req.raw_query.contains("Name=sslvpn%20test~%2F%C3%A4"),
        "{}",
        req.raw_query
    );
}

#[tokio::test]
async fn transient_failures_are_retried_with_the_same_client_token_and_fresh_nonces() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([
        Reply::error(503, "ServiceUnavailable", "R1"),
        Reply::error(500, "InternalError", "R2"),
        Reply::error(400, "Throttling.User", "R3"),
        Reply::ok(server_json("R4")),
    ]);
    let answer = modify(&client(&up), None).await.unwrap();
    assert_eq!(answer.request_id, "R4");

    let reqs = up.requests();
    assert_eq!(reqs.len(), 4);
    for req in &reqs {
        assert_eq!(req.signature_problem, None);
        assert_eq!(req.param("ClientToken"), Some("token-1234"));
    }
    let mut nonces: Vec<&str> = reqs.iter().map(|r| r.nonce.as_str()).collect();
    nonces.sort();
    nonces.dedup();
    assert_eq!(nonces.len(), 4, "every attempt needs a new nonce");
}

#[tokio::test]
async fn retry_after_from_the_cloud_is_honoured() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([
        Reply::error(400, "Throttling.User", "R1").with_header("x-acs-retry-after", "300"),
        Reply::ok(server_json("R2")),
    ]);
    modify(&client(&up), None).await.unwrap();
    let reqs = up.requests();
    assert_eq!(reqs.len(), 2);
    let gap = reqs[1].at - reqs[0].at;
    assert!(gap >= Duration::from_millis(300), "waited only {gap:?}");
    assert!(gap < Duration::from_millis(2000), "waited {gap:?}");
}

#[tokio::test]
async fn non_retryable_codes_are_not_retried_and_keep_code_and_request_id() {
    let cases = [
        (
            400,
            "VpnGateway.Configuring",
            sslvpn_gateway::error::Kind::Busy,
        ),
        (
            404,
            "InvalidSslVpnServerId.NotFound",
            sslvpn_gateway::error::Kind::NotFound,
        ),
        (
            403,
            "Forbidden.RAM",
            sslvpn_gateway::error::Kind::PermissionDenied,
        ),
        (400, "IpConflict", sslvpn_gateway::error::Kind::Conflict),
        (
            400,
            "IdempotentParameterMismatch",
            sslvpn_gateway::error::Kind::Conflict,
        ),
        (
            400,
            "VpnGateway.FinancialLocked",
            sslvpn_gateway::error::Kind::Locked,
        ),
        (
            400,
            "InvalidName",
            sslvpn_gateway::error::Kind::InvalidArgument,
        ),
        (
            400,
            "SomethingNobodyKnows",
            sslvpn_gateway::error::Kind::Unknown,
        ),
    ];
    let up = FakeUpstream::start(SECRET).await;
    let client = client(&up);
    for (i, (status, code, class)) in cases.into_iter().enumerate() {
        let request_id = format!("REQ-{i}");
        up.push([Reply::error(status, code, &request_id)]);
        let err = modify(&client, None).await.unwrap_err();
        assert_eq!(err.kind(), class, "{code}");
        assert_eq!(err.code(), code);
        assert_eq!(err.request_id(), Some(request_id.as_str()));
        assert_eq!(err.http_status(), Some(status));
        assert_eq!(err.attempts(), 1);
        assert_eq!(up.requests().len(), i + 1, "{code} was retried");
    }
}

#[tokio::test]
async fn attempts_are_bounded() {
    let up = FakeUpstream::start(SECRET).await;
    up.set_default(Reply::error(503, "ServiceUnavailable", "R-LAST"));
    let client = client_with(config(&up, fast_retries(3)), Credentials::new(AK, SECRET));
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(up.requests().len(), 3);
    assert_eq!(err.attempts(), 3);
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Unavailable);
    assert_eq!(err.code(), "ServiceUnavailable");
    assert_eq!(err.request_id(), Some("R-LAST"));
}

#[tokio::test]
async fn the_deadline_bounds_retries_and_slow_answers() {
    // Back-offs that would take ~1.3 s on average cannot run past 250 ms.
    let up = FakeUpstream::start(SECRET).await;
    up.set_default(Reply::error(503, "ServiceUnavailable", "R"));
    let retry = RetryPolicy {
        max_attempts: 10,
        base_delay: Duration::from_millis(300),
        max_delay: Duration::from_millis(300),
        max_total: Duration::from_secs(30),
    };
    let client = client_with(config(&up, retry), Credentials::new(AK, SECRET));
    let start = Instant::now();
    let deadline = start + Duration::from_millis(250);
    let err = modify(&client, Some(deadline)).await.unwrap_err();
    assert!(
        start.elapsed() < Duration::from_millis(700),
        "took {:?}",
        start.elapsed()
    );
    assert!(
        err.kind() == sslvpn_gateway::error::Kind::Unavailable
            || err.kind() == sslvpn_gateway::error::Kind::DeadlineExceeded
    );
    let deadline_std = deadline.into_std();
    assert!(
        up.requests().iter().all(|r| r.at <= deadline_std),
        "a request went out after the deadline"
    );

    // An answer that takes longer than the deadline.
    let slow = FakeUpstream::start(SECRET).await;
    slow.set_default(Reply::ok(server_json("late")).delayed(Duration::from_secs(3)));
    let client = client_with(config(&slow, fast_retries(4)), Credentials::new(AK, SECRET));
    let start = Instant::now();
    let err = modify(&client, Some(start + Duration::from_millis(150)))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::DeadlineExceeded);
    assert!(
        start.elapsed() < Duration::from_millis(1000),
        "took {:?}",
        start.elapsed()
    );
    assert_eq!(slow.requests().len(), 1);

    // A retry-after beyond the deadline: give up at once, and say how long.
    let throttled = FakeUpstream::start(SECRET).await;
    throttled.push([
        Reply::error(400, "Throttling.User", "RT").with_header("x-acs-retry-after", "5000")
    ]);
    let client = client_with(
        config(&throttled, fast_retries(4)),
        Credentials::new(AK, SECRET),
    );
    let start = Instant::now();
    let err = modify(&client, Some(start + Duration::from_secs(1)))
        .await
        .unwrap_err();
    assert!(start.elapsed() < Duration::from_millis(1000));
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Throttled);
    assert_eq!(err.retry_after(), Some(Duration::from_millis(5000)));
    assert_eq!(throttled.requests().len(), 1);
}

#[tokio::test]
async fn error_bodies_decode_json_or_not() {
    let up = FakeUpstream::start(SECRET).await;
    let client = client_with(
        config(&up, RetryPolicy::none()),
        Credentials::new(AK, SECRET),
    );
    up.push([Reply::ok(json!({
        "RequestId": "RAM-1", "HostId": "vpc.aliyuncs.com", "Code": "Forbidden.RAM",
        "Message": "User not authorized", "Recommend": "https://r",
        "AccessDeniedDetail": {"AuthAction": "vpc:ModifySslVpnServer", "EncodedDiagnosticMessage": "abc"}
    })).with_status(403)]);
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::PermissionDenied);
    assert_eq!(err.host_id(), Some("vpc.aliyuncs.com"));
    assert_eq!(err.recommend(), Some("https://r"));
    assert_eq!(err.message(), "User not authorized");
    assert_eq!(
        err.access_denied_detail()
            .and_then(|d| d["AuthAction"].as_str()),
        Some("vpc:ModifySslVpnServer")
    );

    up.push(
        [Reply::raw(502, "<html><body>502 Bad Gateway</body></html>")
            .with_header("content-type", "text/html")],
    );
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Unavailable);
    assert_eq!(err.http_status(), Some(502));
    assert_eq!(err.code(), "HttpError");
    assert!(
        err.message().contains("502 Bad Gateway"),
        "{}",
        err.message()
    );

    up.push([Reply::raw(200, "not json at all")]);
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.code(), "InvalidResponse");
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Unknown);
}

#[tokio::test]
async fn redirects_are_not_followed() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([Reply::raw(302, "").with_header("location", &format!("{}/elsewhere", up.url()))]);
    let client = client_with(
        config(&up, RetryPolicy::none()),
        Credentials::new(AK, SECRET),
    );
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.http_status(), Some(302));
    assert_eq!(up.requests().len(), 1);
}

#[tokio::test]
async fn describe_operations_page_and_map() {
    let up = FakeUpstream::start(SECRET).await;
    let client = client(&up);
    let region = region();

    let mut second = server_json("x");
    second["SslVpnServerId"] = json!("vss-other");
    up.push([Reply::ok(json!({
        "RequestId": "LIST-1", "PageNumber": 2, "PageSize": 20, "TotalCount": 45,
        "SslVpnServers": {"SslVpnServer": [server_json("x"), second]}
    }))]);
    let page = client
        .describe_ssl_vpn_servers(
            &region,
            &ServerFilter::by_gateway("vpn-bp1q8bgx4xnkm2ogj1234"),
            PageRequest::new(2, 20),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.items.len(), 2);
    assert_eq!(page.items[1].ssl_vpn_server_id, "vss-other");
    assert_eq!(
        (page.page_number, page.page_size, page.total_count),
        (2, 20, 45)
    );
    assert!(page.has_more());
    assert_eq!(page.request_id, "LIST-1");
    let req = &up.requests()[0];
    assert_eq!(req.action, "DescribeSslVpnServers");
    assert_eq!(req.param("VpnGatewayId"), Some("vpn-bp1q8bgx4xnkm2ogj1234"));
    assert_eq!(req.param("PageNumber"), Some("2"));
    assert_eq!(req.param("PageSize"), Some("20"));
    assert_eq!(req.param("SslVpnServerId"), None);

    up.push([Reply::ok(
        json!({"RequestId": "EMPTY", "TotalCount": 0, "SslVpnServers": {"SslVpnServer": []}}),
    )]);
    assert_eq!(
        client
            .describe_ssl_vpn_server(&region, SERVER, None)
            .await
            .unwrap(),
        None
    );
    assert_eq!(up.requests()[1].param("SslVpnServerId"), Some(SERVER));

    up.push([Reply::ok(json!({"RequestId": "ONE", "TotalCount": 1, "SslVpnServers": {"SslVpnServer": [server_json("y")]}}))]);
    let one = client
        .describe_ssl_vpn_server(&region, SERVER, None)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(one.ssl_vpn_server_id, SERVER);

    up.push([Reply::ok(json!({
        "RequestId": "GW", "VpnGatewayId": "vpn-1", "VpcId": "vpc-1", "Status": "updating",
        "BusinessStatus": "Normal", "SslMaxConnections": 5, "SslVpn": "enable",
        "Tag": "{\"IDaaSNewVersion\":\"true\"}", "Spec": "5M", "EndTime": 1, "CreateTime": 2
    }))]);
    let gw = client
        .describe_vpn_gateway(&region, "vpn-1", None)
        .await
        .unwrap();
    assert_eq!(gw.status, "updating");
    assert_eq!(gw.ssl_max_connections, 5);
    assert_eq!(gw.tag, "{\"IDaaSNewVersion\":\"true\"}");
    assert_eq!(up.requests()[3].param("VpnGatewayId"), Some("vpn-1"));

    up.push([Reply::ok(json!({"RequestId": "GW0"}))]);
    let err = client
        .describe_vpn_gateway(&region, "vpn-gone", None)
        .await
        .unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::NotFound);
    assert_eq!(err.request_id(), Some("GW0"));

    up.push([Reply::ok(json!({
        "RequestId": "GWS", "PageNumber": 1, "PageSize": 50, "TotalCount": 1,
        "VpnGateways": {"VpnGateway": [{"VpnGatewayId": "vpn-2", "Status": "active", "BusinessStatus": "FinancialLocked"}]}
    }))]);
    let filter = GatewayFilter {
        tags: vec![("env".into(), "test".into())],
        ..GatewayFilter::default()
    };
    let gws = client
        .describe_vpn_gateways(&region, &filter, PageRequest::default(), None)
        .await
        .unwrap();
    assert!(gws.items[0].is_financially_locked());
    assert!(!gws.has_more());
    let req = &up.requests()[5];
    assert_eq!(req.action, "DescribeVpnGateways");
    assert_eq!(req.param("Tag.1.Key"), Some("env"));
    assert_eq!(req.param("Tag.1.Value"), Some("test"));
    assert_eq!(req.param("PageSize"), Some("50"));
    assert!(up.requests().iter().all(|r| r.signature_problem.is_none()));
}

#[tokio::test]
async fn legacy_v1_signature_mode_verifies_and_carries_the_sts_token() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([Reply::ok(server_json("V1"))]);
    let config = CloudConfig {
        signature_version: SignatureVersion::V1,
        ..config(&up, fast_retries(1))
    };
    let client = client_with(
        config,
        Credentials::new(AK, SECRET).with_security_token(TOKEN),
    );
    modify(&client, None).await.unwrap();
    let req = &up.requests()[0];
    assert_eq!(req.signature_problem, None);
    assert_eq!(req.action, "ModifySslVpnServer");
    assert_eq!(req.param("SecurityToken"), Some(TOKEN));
    assert_eq!(req.param("Format"), Some("json"));
    assert_eq!(req.param("Compress"), Some("false"));
    assert_eq!(req.header("authorization"), None);
}

#[tokio::test]
async fn v3_sts_token_travels_in_a_signed_header() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([Reply::ok(server_json("STS"))]);
    let client = client_with(
        config(&up, fast_retries(1)),
        Credentials::new(AK, SECRET).with_security_token(TOKEN),
    );
    modify(&client, None).await.unwrap();
    let req = &up.requests()[0];
    assert_eq!(req.signature_problem, None);
    assert_eq!(req.header("x-acs-security-token"), Some(TOKEN));
    assert_eq!(req.header("x-acs-accesskey-id"), Some(AK));
    assert!(
        req.header("authorization")
            .unwrap()
            .contains("x-acs-security-token")
    );
    assert_eq!(req.param("SecurityToken"), None);
}

/// A provider that counts fetches and invalidations.
#[derive(Debug, Default)]
struct Rotating {
    fetched: AtomicUsize,
    invalidated: AtomicUsize,
}

impl CredentialProvider for Rotating {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CloudError>> {
        self.fetched.fetch_add(1, Ordering::SeqCst);
        Box::pin(async { Ok(Credentials::new(AK, SECRET).with_security_token(TOKEN)) })
    }
    fn name(&self) -> &str {
        "test/rotating"
    }
    fn invalidate(&self) {
        self.invalidated.fetch_add(1, Ordering::SeqCst);
    }
}

#[tokio::test]
async fn a_rejected_sts_token_is_refreshed_once() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([
        Reply::error(400, "InvalidSecurityToken.Expired", "E1"),
        Reply::ok(server_json("OK")),
    ]);
    let provider = Arc::new(Rotating::default());
    let client = VpcClient::new(config(&up, fast_retries(4)), provider.clone()).unwrap();
    modify(&client, None).await.unwrap();
    assert_eq!(provider.invalidated.load(Ordering::SeqCst), 1);
    assert_eq!(provider.fetched.load(Ordering::SeqCst), 2);
    assert_eq!(
        up.requests()[0].header("x-acs-credentials-provider"),
        Some("test/rotating")
    );

    // Rejected again right after the refresh: no loop.
    up.set_default(Reply::error(400, "InvalidSecurityToken.Expired", "E2"));
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Credentials);
    assert_eq!(provider.invalidated.load(Ordering::SeqCst), 2);
    assert_eq!(up.requests().len(), 4);
}

#[tokio::test]
async fn connect_errors_are_transient_and_retried() {
    let port = ClosedPort::new();
    let closed = port.addr;
    let config = CloudConfig {
        endpoint: Some(format!("http://{closed}")),
        retry: fast_retries(2),
        ..CloudConfig::default()
    };
    let client = client_with(config, Credentials::new(AK, SECRET));
    let err = modify(&client, None).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Unavailable);
    assert_eq!(err.code(), "Transport.ConnectFailed");
    assert_eq!(err.attempts(), 2);
    assert!(
        err.message().contains(&format!("http://{closed}/")),
        "{}",
        err.message()
    );
    assert!(!err.message().contains("Signature"), "{}", err.message());
}

#[tokio::test]
async fn per_region_overrides_win_over_the_global_endpoint() {
    let up = FakeUpstream::start(SECRET).await;
    up.push([Reply::ok(server_json("BJ"))]);
    let config = CloudConfig {
        endpoint: Some("http://127.0.0.1:9".into()),
        region_endpoints: HashMap::from([("cn-beijing".to_owned(), up.url())]),
        retry: fast_retries(1),
        ..CloudConfig::default()
    };
    let client = client_with(config, Credentials::new(AK, SECRET));
    let beijing = validate::region_id("cn-beijing").unwrap();
    let page = client
        .describe_ssl_vpn_servers(
            &beijing,
            &ServerFilter::by_server(SERVER),
            PageRequest::default(),
            None,
        )
        .await
        .unwrap();
    assert_eq!(page.request_id, "BJ");
    assert_eq!(up.requests()[0].param("RegionId"), Some("cn-beijing"));
    assert!(
        VpcClient::new(
            CloudConfig {
                endpoint: Some("ftp://nope".into()),
                ..CloudConfig::default()
            },
            Arc::new(StaticCredentials::new(Credentials::new(AK, SECRET))),
        )
        .is_err()
    );
}
