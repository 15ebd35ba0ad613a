//! What the client's spans and logs show: the OTel HTTP client fields and
//! the cloud's RequestId, never the AccessKeyId, secret, token or
//! signature. The test runs in a process of its own
//! (`support::in_own_process`): tracing caches per-callsite interest
//! process-wide, so a scoped subscriber is only reliable when no other test
//! thread hits the same callsites.

use std::{sync::Arc, time::Duration};

use serde_json::json;
use sslvpn_gateway::{
    cloud::{
        CloudConfig, Credentials, ModifyRequest, RetryPolicy, SignatureVersion, StaticCredentials,
        VpcClient,
    },
    domain::Changes,
    validate,
};

use crate::support::{
    Capture,
    fake_upstream::{FakeUpstream, Reply},
    in_own_process,
};

const AK: &str = "LTAI5tFAKEACCESSKEYID";
const SECRET: &str = "FakeSecret0123456789abcdefABCDEF";
const TOKEN: &str = "CAIS.FAKE+STS/Token==";

#[tokio::test]
async fn spans_and_logs_carry_the_request_but_no_secrets() {
    if !in_own_process("cloud_tracing::spans_and_logs_carry_the_request_but_no_secrets").await {
        return;
    }
    let captured = Capture::default();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(captured.clone())
        .with_max_level(tracing::Level::TRACE)
        .with_span_events(tracing_subscriber::fmt::format::FmtSpan::CLOSE)
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let up = FakeUpstream::start(SECRET).await;
    // The legacy signature puts everything in the URL: the worst case. The
    // cloud's SignatureDoesNotMatch echoes its string to sign.
    let echo = format!(
        "Specified signature is not matched with our calculation. server string to sign is:POST&%2F&AccessKeyId%3D{AK}%26SecurityToken%3D{}",
        TOKEN
            .replace('+', "%252B")
            .replace('/', "%252F")
            .replace('=', "%253D")
    );
    up.push([
        Reply::error(503, "ServiceUnavailable", "REQ-503"),
        Reply::ok(
            json!({"RequestId": "REQ-SIG", "Code": "SignatureDoesNotMatch", "Message": echo}),
        )
        .with_status(400),
    ]);
    let config = CloudConfig {
        signature_version: SignatureVersion::V1,
        endpoint: Some(up.url()),
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
            max_total: Duration::from_secs(5),
        },
        ..CloudConfig::default()
    };
    let creds = Credentials::new(AK, SECRET).with_security_token(TOKEN);
    let client = VpcClient::new(config, Arc::new(StaticCredentials::new(creds))).unwrap();
    let region = validate::region_id("cn-hangzhou").unwrap();
    let changes = Changes {
        port: Some(1195),
        ..Changes::default()
    };
    let request = ModifyRequest {
        region: &region,
        ssl_vpn_server_id: "vss-abc123",
        client_token: "token-1",
        changes: &changes,
    };
    let err = client
        .modify_ssl_vpn_server(&request, None)
        .await
        .unwrap_err();
    assert_eq!(err.code(), "SignatureDoesNotMatch");
    assert!(!err.message().contains(AK), "{}", err.message());
    assert!(!format!("{err:?}").contains("CAIS"), "{err:?}");

    let out = captured.text();
    assert!(out.contains(&format!("url.full={}/", up.url())), "{out}");
    assert!(out.contains("http.response.status_code=503"), "{out}");
    assert!(out.contains("otel.kind=\"client\""), "{out}");
    assert!(out.contains("acs.request_id=\"REQ-503\""), "{out}");
    assert!(out.contains("acs.attempt=2"), "{out}");
    assert!(out.contains("server.port="), "{out}");
    assert!(out.contains("acs.action=\"ModifySslVpnServer\""), "{out}");
    for secret in [AK, SECRET, "CAIS", "Signature=", "SecurityToken="] {
        assert!(
            !out.contains(secret),
            "{secret} leaked into the logs:\n{out}"
        );
    }
}
