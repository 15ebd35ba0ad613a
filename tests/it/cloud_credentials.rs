//! The credential chain, each source alone and in order, with the
//! environment injected as a map and HOME files in temporary directories,
//! and the ECS RAM role against a fake metadata service on 127.0.0.1.

use std::{
    collections::{HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};

use axum::{
    Router,
    extract::State,
    http::{HeaderMap, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use serde_json::json;
use sslvpn_gateway::cloud::{ChainConfig, CredentialProvider, EcsRamRole, default_chain};

use crate::support::{ClosedPort, Files, serve_http};

const CLI_CONFIG: &str = r#"{
  "current": "prod",
  "profiles": [
    {"name": "default", "mode": "AK", "access_key_id": "CLI_AK_ID", "access_key_secret": "CLI_AK_SECRET", "region_id": "cn-hangzhou"},
    {"name": "prod", "mode": "StsToken", "access_key_id": "CLI_STS_ID", "access_key_secret": "CLI_STS_SECRET", "sts_token": "CLI_STS_TOKEN"},
    {"name": "sso", "mode": "CloudSSO"}
  ]
}"#;

const INI: &str = "; written by hand\n[default]\ntype = access_key   # static keys\naccess_key_id = INI_ID\naccess_key_secret = INI_SECRET\n\n[other]\ntype = access_key\naccess_key_id = OTHER_ID\naccess_key_secret = OTHER_SECRET\n";

fn env(pairs: &[(&str, &str)]) -> HashMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// No metadata service: the chain must not wait for 100.100.100.200.
fn chain(home: &Files, mut vars: HashMap<String, String>) -> ChainConfig {
    vars.entry("ALIBABA_CLOUD_ECS_METADATA_DISABLED".into())
        .or_insert_with(|| "true".into());
    ChainConfig {
        env: vars,
        home: Some(home.dir().to_path_buf()),
        ..ChainConfig::default()
    }
}

async fn resolve(config: &ChainConfig) -> (String, String, Option<String>) {
    let provider = default_chain(config).await.unwrap();
    let creds = provider.credentials().await.unwrap();
    (
        provider.name().to_owned(),
        creds.access_key_id().to_owned(),
        creds.security_token().map(str::to_owned),
    )
}

#[tokio::test]
async fn environment_alone() {
    let home = Files::new();
    let config = chain(
        &home,
        env(&[
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"),
            ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ENV_SECRET"),
        ]),
    );
    assert_eq!(
        resolve(&config).await,
        ("default/env".into(), "ENV_ID".into(), None)
    );

    let mut with_token = config.clone();
    with_token
        .env
        .insert("ALIBABA_CLOUD_SECURITY_TOKEN".into(), "ENV_TOKEN".into());
    let (_, _, token) = resolve(&with_token).await;
    assert_eq!(token.as_deref(), Some("ENV_TOKEN"));
    assert!(!format!("{with_token:?}").contains("ENV_SECRET"));
}

#[tokio::test]
async fn cli_profile_alone_in_ak_and_sts_modes() {
    let home = Files::new();
    home.write(".aliyun/config.json", CLI_CONFIG);
    // The file's current profile.
    assert_eq!(
        resolve(&chain(&home, env(&[]))).await,
        (
            "default/cli_profile/static_sts".into(),
            "CLI_STS_ID".into(),
            Some("CLI_STS_TOKEN".into())
        )
    );
    // ALIBABA_CLOUD_PROFILE picks another.
    assert_eq!(
        resolve(&chain(&home, env(&[("ALIBABA_CLOUD_PROFILE", "default")]))).await,
        (
            "default/cli_profile/static_ak".into(),
            "CLI_AK_ID".into(),
            None
        )
    );
    // An unsupported mode is reported, not guessed at.
    let err = default_chain(&chain(&home, env(&[("ALIBABA_CLOUD_PROFILE", "sso")])))
        .await
        .unwrap_err();
    assert!(err.message().contains("CloudSSO"), "{}", err.message());
}

#[tokio::test]
async fn a_configured_unsupported_source_stops_the_chain_instead_of_falling_back() {
    let home = Files::new();
    // A later source that would work: the chain must not reach it.
    home.write(".alibabacloud/credentials.ini", INI);
    home.write(
        ".aliyun/config.json",
        r#"{"current": "assume", "profiles": [{"name": "assume", "mode": "RamRoleArn",
            "access_key_id": "ROLE_AK", "access_key_secret": "ROLE_SECRET",
            "ram_role_arn": "acs:ram::1:role/ops"}]}"#,
    );
    let err = default_chain(&chain(&home, env(&[]))).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Credentials);
    let msg = err.message();
    assert!(
        msg.contains("CLI profile") && msg.contains("RamRoleArn"),
        "{msg}"
    );
    assert!(msg.contains("does not support"), "{msg}");
    assert!(
        !msg.contains("ROLE_SECRET") && !msg.contains("INI_SECRET"),
        "{msg}"
    );

    // The OIDC role comes before both files in the official order.
    std::fs::remove_file(home.path(".aliyun/config.json")).unwrap();
    let oidc = [
        ("ALIBABA_CLOUD_OIDC_TOKEN_FILE", "/var/run/secrets/token"),
        ("ALIBABA_CLOUD_ROLE_ARN", "acs:ram::1:role/ops"),
        (
            "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
            "acs:ram::1:oidc-provider/ack",
        ),
    ];
    let err = default_chain(&chain(&home, env(&oidc))).await.unwrap_err();
    assert!(
        err.message().contains("OIDC role (RRSA)"),
        "{}",
        err.message()
    );
    // Not all three set: the SDK does not use OIDC either, and nor do we.
    assert_eq!(resolve(&chain(&home, env(&oidc[..2]))).await.1, "INI_ID");

    // An unsupported type in the credentials file stops the chain too.
    home.write(
        ".alibabacloud/credentials.ini",
        "[default]\ntype = ram_role_arn\naccess_key_id = A\naccess_key_secret = B\n",
    );
    let err = default_chain(&chain(&home, env(&[]))).await.unwrap_err();
    assert!(err.message().contains("ram_role_arn"), "{}", err.message());
}

#[tokio::test]
async fn credentials_file_alone() {
    let home = Files::new();
    home.write(".alibabacloud/credentials.ini", INI);
    assert_eq!(
        resolve(&chain(&home, env(&[]))).await,
        ("default/profile/static_ak".into(), "INI_ID".into(), None)
    );
    assert_eq!(
        resolve(&chain(&home, env(&[("ALIBABA_CLOUD_PROFILE", "other")])))
            .await
            .1,
        "OTHER_ID"
    );
    // ALIBABA_CLOUD_CREDENTIALS_FILE moves it.
    let elsewhere = Files::new();
    let path = elsewhere.write("creds.ini", &INI.replace("INI_ID", "MOVED_ID"));
    let config = chain(
        &home,
        env(&[("ALIBABA_CLOUD_CREDENTIALS_FILE", path.to_str().unwrap())]),
    );
    assert_eq!(resolve(&config).await.1, "MOVED_ID");
}

#[tokio::test]
async fn sources_are_tried_in_the_official_order() {
    let home = Files::new();
    home.write(".aliyun/config.json", CLI_CONFIG);
    home.write(".alibabacloud/credentials.ini", INI);
    let env_vars = [
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "ENV_ID"),
        ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "ENV_SECRET"),
    ];
    assert_eq!(resolve(&chain(&home, env(&env_vars))).await.1, "ENV_ID");
    // An incomplete environment falls through to the CLI profile.
    assert_eq!(
        resolve(&chain(&home, env(&env_vars[..1]))).await.1,
        "CLI_STS_ID"
    );
    assert_eq!(
        resolve(&chain(
            &home,
            env(&[("ALIBABA_CLOUD_CLI_PROFILE_DISABLED", "true")])
        ))
        .await
        .1,
        "INI_ID"
    );
}

#[tokio::test]
async fn nothing_found_lists_every_source_tried() {
    let home = Files::new();
    let vars = env(&[
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", "HALF_ID"),
        ("ALIBABA_CLOUD_CREDENTIALS_URI", "http://127.0.0.1:1/creds"),
    ]);
    let err = default_chain(&chain(&home, vars)).await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Credentials);
    let msg = err.message();
    let order = [
        "1) environment: ALIBABA_CLOUD_ACCESS_KEY_ID is set but ALIBABA_CLOUD_ACCESS_KEY_SECRET is not",
        "2) credentials URI",
        "3) CLI profile",
        "config.json does not exist",
        "4) credentials file",
        "credentials.ini does not exist",
        "5) ECS RAM role: disabled by ALIBABA_CLOUD_ECS_METADATA_DISABLED",
    ];
    let mut at = 0;
    for part in order {
        let found = msg[at..]
            .find(part)
            .unwrap_or_else(|| panic!("{part:?} missing or out of order in: {msg}"));
        at += found;
    }
    assert!(!msg.contains("HALF_ID"));
}

/// A fake ECS metadata service.
#[derive(Default)]
struct Meta {
    /// `Some(status)` makes the token request fail.
    token_failure: Option<u16>,
    role: String,
    /// Credential answers in order; the last one repeats.
    answers: Mutex<VecDeque<(u16, serde_json::Value)>>,
    log: Mutex<Vec<String>>,
}

impl Meta {
    fn count(&self, prefix: &str) -> usize {
        self.log
            .lock()
            .unwrap()
            .iter()
            .filter(|l| l.starts_with(prefix))
            .count()
    }
}

async fn metadata(
    State(meta): State<Arc<Meta>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let token = headers
        .get("x-aliyun-ecs-metadata-token")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("-")
        .to_owned();
    let path = uri.path().to_owned();
    meta.log
        .lock()
        .unwrap()
        .push(format!("{method} {path} token={token}"));
    const CREDS: &str = "/latest/meta-data/ram/security-credentials/";
    match (method.as_str(), path.as_str()) {
        ("PUT", "/latest/api/token") => {
            if let Some(status) = meta.token_failure {
                return StatusCode::from_u16(status).unwrap().into_response();
            }
            if headers
                .get("x-aliyun-ecs-metadata-token-ttl-seconds")
                .is_none()
            {
                return StatusCode::BAD_REQUEST.into_response();
            }
            "IMDS-TOKEN".into_response()
        }
        ("GET", CREDS) => meta.role.clone().into_response(),
        ("GET", p) if p.strip_prefix(CREDS) == Some(meta.role.as_str()) => {
            let mut answers = meta.answers.lock().unwrap();
            let (status, body) = if answers.len() > 1 {
                answers.pop_front().unwrap()
            } else {
                answers.front().cloned().unwrap()
            };
            (StatusCode::from_u16(status).unwrap(), body.to_string()).into_response()
        }
        _ => StatusCode::NOT_FOUND.into_response(),
    }
}

async fn start_metadata(meta: Arc<Meta>) -> String {
    let addr = serve_http(Router::new().fallback(metadata).with_state(meta)).await;
    format!("http://{addr}")
}

fn sts_answer(id: &str, expires_in: Duration) -> (u16, serde_json::Value) {
    let expiration = humantime::format_rfc3339_seconds(SystemTime::now() + expires_in).to_string();
    (
        200,
        json!({
            "Code": "Success",
            "AccessKeyId": id,
            "AccessKeySecret": format!("{id}-secret"),
            "SecurityToken": format!("{id}-token"),
            "Expiration": expiration,
            "LastUpdated": "2026-11-25T18:00:00Z"
        }),
    )
}

fn meta_with(answers: Vec<(u16, serde_json::Value)>) -> Meta {
    Meta {
        role: "gateway-role".into(),
        answers: Mutex::new(answers.into()),
        ..Meta::default()
    }
}

#[tokio::test]
async fn ecs_ram_role_alone_uses_an_imdsv2_token_and_discovers_the_role() {
    let meta = Arc::new(meta_with(vec![sts_answer(
        "STS.ONE",
        Duration::from_secs(6 * 3600),
    )]));
    let url = start_metadata(meta.clone()).await;
    let home = Files::new();
    let config = ChainConfig {
        ecs_metadata_url: url,
        ..chain(
            &home,
            env(&[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "false")]),
        )
    };
    let provider = default_chain(&config).await.unwrap();
    assert_eq!(provider.name(), "default/ecs_ram_role");
    let creds = provider.credentials().await.unwrap();
    assert_eq!(creds.access_key_id(), "STS.ONE");
    assert_eq!(creds.security_token(), Some("STS.ONE-token"));
    let log = meta.log.lock().unwrap().clone();
    assert_eq!(
        log,
        vec![
            "PUT /latest/api/token token=-".to_owned(),
            "GET /latest/meta-data/ram/security-credentials/ token=IMDS-TOKEN".to_owned(),
            "GET /latest/meta-data/ram/security-credentials/gateway-role token=IMDS-TOKEN"
                .to_owned(),
        ]
    );
    assert!(!format!("{provider:?} {creds:?}").contains("STS.ONE-secret"));
}

#[tokio::test]
async fn ecs_credentials_are_refreshed_before_they_expire() {
    // The first triple is already inside the 15-minute margin.
    let meta = Arc::new(meta_with(vec![
        sts_answer("STS.OLD", Duration::from_secs(10 * 60)),
        sts_answer("STS.NEW", Duration::from_secs(6 * 3600)),
    ]));
    let url = start_metadata(meta.clone()).await;
    let provider =
        EcsRamRole::new(url, Some("gateway-role".into()), Duration::from_secs(1)).unwrap();
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.OLD"
    );
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.NEW"
    );
    // Fresh now: served from the cache.
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.NEW"
    );
    assert_eq!(
        meta.count("GET /latest/meta-data/ram/security-credentials/gateway-role"),
        2
    );
    assert_eq!(meta.count("PUT"), 2);
    // Invalidation forces a fetch.
    provider.invalidate();
    provider.credentials().await.unwrap();
    assert_eq!(
        meta.count("GET /latest/meta-data/ram/security-credentials/gateway-role"),
        3
    );
}

#[tokio::test]
async fn a_failed_early_refresh_keeps_the_still_valid_triple() {
    let meta = Arc::new(meta_with(vec![
        sts_answer("STS.OLD", Duration::from_secs(10 * 60)),
        (500, json!({"Code": "InternalError"})),
    ]));
    let url = start_metadata(meta.clone()).await;
    let provider = EcsRamRole::new(
        url.clone(),
        Some("gateway-role".into()),
        Duration::from_secs(1),
    )
    .unwrap();
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.OLD"
    );
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.OLD"
    );
    let fetches = || meta.count("GET /latest/meta-data/ram/security-credentials/gateway-role");
    assert_eq!(fetches(), 2);
    // Within the pause after a failed refresh, calls do not wait on the
    // failing service again.
    for _ in 0..5 {
        assert_eq!(
            provider.credentials().await.unwrap().access_key_id(),
            "STS.OLD"
        );
    }
    assert_eq!(fetches(), 2);

    // After the pause it tries again (and, failing, keeps the old triple).
    let quick = EcsRamRole::new(
        url.clone(),
        Some("gateway-role".into()),
        Duration::from_secs(1),
    )
    .unwrap()
    .with_refresh_retry(Duration::ZERO);
    meta.answers
        .lock()
        .unwrap()
        .push_front(sts_answer("STS.OLD", Duration::from_secs(10 * 60)));
    let before = fetches();
    for _ in 0..3 {
        assert_eq!(
            quick.credentials().await.unwrap().access_key_id(),
            "STS.OLD"
        );
    }
    assert_eq!(fetches(), before + 3);

    // Nothing cached and the service failing: an error naming the URL.
    let fresh = EcsRamRole::new(
        url.clone(),
        Some("gateway-role".into()),
        Duration::from_secs(1),
    )
    .unwrap();
    let err = fresh.credentials().await.unwrap_err();
    assert_eq!(err.kind(), sslvpn_gateway::error::Kind::Credentials);
    assert!(err.message().contains("HTTP 500"), "{}", err.message());
}

#[tokio::test]
async fn imdsv1_fallback_unless_disabled() {
    let meta = Arc::new(Meta {
        token_failure: Some(403),
        ..meta_with(vec![sts_answer("STS.V1", Duration::from_secs(3600))])
    });
    let url = start_metadata(meta.clone()).await;
    let provider = EcsRamRole::new(url.clone(), None, Duration::from_secs(1)).unwrap();
    assert_eq!(
        provider.credentials().await.unwrap().access_key_id(),
        "STS.V1"
    );
    assert!(
        meta.log
            .lock()
            .unwrap()
            .iter()
            .skip(1)
            .all(|l| l.ends_with("token=-"))
    );

    let home = Files::new();
    let config = ChainConfig {
        ecs_metadata_url: url,
        ..chain(
            &home,
            env(&[
                ("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "false"),
                ("ALIBABA_CLOUD_IMDSV1_DISABLED", "true"),
            ]),
        )
    };
    let err = default_chain(&config).await.unwrap_err();
    assert!(
        err.message().contains("IMDSv1 is disabled"),
        "{}",
        err.message()
    );
}

#[tokio::test]
async fn an_unreachable_metadata_service_ends_the_chain_quickly() {
    let port = ClosedPort::new();
    let closed = port.addr;
    let home = Files::new();
    let config = ChainConfig {
        ecs_metadata_url: format!("http://{closed}"),
        ecs_metadata_timeout: Duration::from_millis(300),
        ..chain(&home, env(&[("ALIBABA_CLOUD_ECS_METADATA_DISABLED", "")]))
    };
    let started = std::time::Instant::now();
    let err = default_chain(&config).await.unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(2));
    assert!(
        err.message().contains(&format!(
            "ECS RAM role: metadata request to http://{closed}"
        )),
        "{}",
        err.message()
    );
}
