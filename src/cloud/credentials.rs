//! Where the AccessKey comes from: static keys, or the official credential
//! chain (environment, CLI profile, credentials file, ECS RAM role).
//!
//! The chain is resolved once at startup so a gateway without credentials
//! fails fast, with an error that lists every source it tried and why each
//! gave nothing. The ECS RAM role hands out STS triples that expire; its
//! provider caches one and fetches the next before the old one runs out.
//! The chain reads its environment from a map and its files from a given
//! home directory, so tests never touch the process environment. Secrets
//! never appear in any `Debug` output or error.

use std::{
    collections::HashMap,
    fmt,
    future::Future,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use serde::Deserialize;

use super::{error::CloudError, sign::percent_encode};

/// A boxed future, so providers can be used as `dyn CredentialProvider`.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An AccessKey pair, with the STS token when it is temporary.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    access_key_id: String,
    access_key_secret: String,
    security_token: Option<String>,
    expiration: Option<SystemTime>,
}

impl Credentials {
    pub fn new(access_key_id: impl Into<String>, access_key_secret: impl Into<String>) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            access_key_secret: access_key_secret.into(),
            security_token: None,
            expiration: None,
        }
    }

    /// Makes these STS credentials; an empty token means none.
    pub fn with_security_token(mut self, token: impl Into<String>) -> Self {
        let token = token.into();
        self.security_token = (!token.is_empty()).then_some(token);
        self
    }

    pub fn with_expiration(mut self, expiration: SystemTime) -> Self {
        self.expiration = Some(expiration);
        self
    }

    pub fn access_key_id(&self) -> &str {
        &self.access_key_id
    }

    pub fn access_key_secret(&self) -> &str {
        &self.access_key_secret
    }

    pub fn security_token(&self) -> Option<&str> {
        self.security_token.as_deref()
    }

    pub fn expiration(&self) -> Option<SystemTime> {
        self.expiration
    }

    pub fn is_sts(&self) -> bool {
        self.security_token.is_some()
    }
}

/// The first four characters of an AccessKeyId (`LTAI`), which identify
/// the key type but not the key.
fn mask_key_id(id: &str) -> String {
    let head: String = id.chars().take(4).collect();
    format!("{head}***")
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key_id", &mask_key_id(&self.access_key_id))
            .field("access_key_secret", &"***")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .field(
                "expiration",
                &self.expiration.map(humantime::format_rfc3339_seconds),
            )
            .finish()
    }
}

/// Something that hands out credentials for each request.
pub trait CredentialProvider: Send + Sync + fmt::Debug {
    /// Current credentials; may fetch or refresh them.
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CloudError>>;

    /// A short name of the source (`default/env`, `static_sts`...), sent as
    /// `x-acs-credentials-provider` and logged; never a secret.
    fn name(&self) -> &str;

    /// Forgets cached credentials after the cloud rejected them, so the
    /// next call fetches fresh ones. Static sources have nothing to forget.
    fn invalidate(&self) {}
}

/// Fixed credentials: from the configuration, the environment or a file.
pub struct StaticCredentials {
    credentials: Credentials,
    name: String,
}

impl StaticCredentials {
    pub fn new(credentials: Credentials) -> Self {
        let name = if credentials.is_sts() {
            "static_sts"
        } else {
            "static_ak"
        };
        Self {
            credentials,
            name: name.to_owned(),
        }
    }

    /// Names the source (shown in logs and `x-acs-credentials-provider`).
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl fmt::Debug for StaticCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StaticCredentials")
            .field("name", &self.name)
            .field("credentials", &self.credentials)
            .finish()
    }
}

impl CredentialProvider for StaticCredentials {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CloudError>> {
        let credentials = self.credentials.clone();
        Box::pin(async move { Ok(credentials) })
    }

    fn name(&self) -> &str {
        &self.name
    }
}

/// The ECS instance metadata service's address.
pub const DEFAULT_ECS_METADATA_URL: &str = "http://100.100.100.200";

/// The STS triple is replaced this long before it expires (the SDK's margin).
pub const ECS_REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(15 * 60);

const IMDS_TOKEN_TTL_SECONDS: &str = "21600";

/// The ECS RAM role attached to this instance, read from the metadata
/// service: IMDSv2 token first, then the role's STS credentials, cached and
/// refreshed before they expire.
pub struct EcsRamRole {
    base_url: String,
    role_name: Option<String>,
    imds_v1_disabled: bool,
    refresh_before: Duration,
    http: reqwest::Client,
    name: String,
    // A tokio mutex held across the fetch: concurrent callers wait for one
    // refresh instead of each hitting the metadata service.
    cache: tokio::sync::Mutex<Option<Credentials>>,
}

impl EcsRamRole {
    /// `base_url` is `http://100.100.100.200` on ECS (a local fake in
    /// tests); `role_name` `None` asks the metadata service for it.
    pub fn new(
        base_url: impl Into<String>,
        role_name: Option<String>,
        timeout: Duration,
    ) -> Result<Self, CloudError> {
        super::client::install_crypto_provider();
        let http = reqwest::Client::builder()
            .connect_timeout(timeout)
            .timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .build()
            .map_err(|e| CloudError::config(format!("cannot build the metadata client: {e}")))?;
        Ok(Self {
            base_url: base_url.into().trim_end_matches('/').to_owned(),
            role_name: role_name.filter(|r| !r.is_empty()),
            imds_v1_disabled: false,
            refresh_before: ECS_REFRESH_BEFORE_EXPIRY,
            http,
            name: "ecs_ram_role".to_owned(),
            cache: tokio::sync::Mutex::new(None),
        })
    }

    /// Refuses to fall back to IMDSv1 when the token request fails.
    pub fn with_imds_v1_disabled(mut self, disabled: bool) -> Self {
        self.imds_v1_disabled = disabled;
        self
    }

    /// How long before expiry the credentials are replaced.
    pub fn with_refresh_before(mut self, margin: Duration) -> Self {
        self.refresh_before = margin;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    fn is_fresh(&self, credentials: &Credentials) -> bool {
        match credentials.expiration() {
            Some(expiration) => SystemTime::now() + self.refresh_before < expiration,
            None => true,
        }
    }

    async fn fetch(&self) -> Result<Credentials, CloudError> {
        let token = self.imds_token().await?;
        let role = match &self.role_name {
            Some(role) => role.clone(),
            None => {
                let list = self
                    .get_text(
                        "/latest/meta-data/ram/security-credentials/",
                        token.as_deref(),
                    )
                    .await?;
                list.lines()
                    .map(str::trim)
                    .find(|l| !l.is_empty())
                    .map(str::to_owned)
                    .ok_or_else(|| {
                        CloudError::credentials(
                            "the instance metadata service lists no RAM role for this instance",
                        )
                    })?
            }
        };
        let path = format!(
            "/latest/meta-data/ram/security-credentials/{}",
            percent_encode(&role)
        );
        let body = self.get_text(&path, token.as_deref()).await?;
        parse_metadata_credentials(&body, &role)
    }

    /// IMDSv2: a session token for the following requests. Falls back to
    /// IMDSv1 (no token) unless that is disabled.
    async fn imds_token(&self) -> Result<Option<String>, CloudError> {
        let result = self
            .http
            .put(format!("{}/latest/api/token", self.base_url))
            .header(
                "X-aliyun-ecs-metadata-token-ttl-seconds",
                IMDS_TOKEN_TTL_SECONDS,
            )
            .send()
            .await;
        let failure = match result {
            Ok(resp) if resp.status().is_success() => match resp.text().await {
                Ok(token) if !token.trim().is_empty() => return Ok(Some(token.trim().to_owned())),
                Ok(_) => "an empty token".to_owned(),
                Err(e) => format!("an unreadable token ({e})"),
            },
            Ok(resp) => format!("HTTP {}", resp.status().as_u16()),
            Err(e) => transport_reason(&e),
        };
        if self.imds_v1_disabled {
            Err(CloudError::credentials(format!(
                "the IMDSv2 token request to {} failed ({failure}) and IMDSv1 is disabled",
                self.base_url
            )))
        } else {
            tracing::debug!(reason = %failure, "IMDSv2 token unavailable, trying IMDSv1");
            Ok(None)
        }
    }

    async fn get_text(&self, path: &str, token: Option<&str>) -> Result<String, CloudError> {
        let url = format!("{}{path}", self.base_url);
        let mut req = self.http.get(&url);
        if let Some(token) = token {
            req = req.header("X-aliyun-ecs-metadata-token", token);
        }
        let resp = req.send().await.map_err(|e| {
            CloudError::credentials(format!(
                "metadata request to {url} failed: {}",
                transport_reason(&e)
            ))
        })?;
        let status = resp.status();
        if !status.is_success() {
            return Err(CloudError::credentials(format!(
                "metadata request to {url} answered HTTP {}",
                status.as_u16()
            )));
        }
        resp.text().await.map_err(|e| {
            CloudError::credentials(format!("metadata answer from {url} unreadable: {e}"))
        })
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".to_owned()
    } else if e.is_connect() {
        "connection failed".to_owned()
    } else {
        e.to_string()
    }
}

/// The metadata service's STS answer.
#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct MetadataCredentials {
    #[serde(default)]
    code: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    security_token: String,
    #[serde(default)]
    expiration: String,
}

fn parse_metadata_credentials(body: &str, role: &str) -> Result<Credentials, CloudError> {
    let parsed: MetadataCredentials = serde_json::from_str(body).map_err(|e| {
        CloudError::credentials(format!(
            "the metadata credentials of role {role:?} are not JSON: {e}"
        ))
    })?;
    if parsed.code != "Success" {
        return Err(CloudError::credentials(format!(
            "the metadata service refused the credentials of role {role:?} (Code {:?})",
            parsed.code
        )));
    }
    if parsed.access_key_id.is_empty()
        || parsed.access_key_secret.is_empty()
        || parsed.security_token.is_empty()
    {
        return Err(CloudError::credentials(format!(
            "the metadata credentials of role {role:?} are incomplete"
        )));
    }
    let expiration = humantime::parse_rfc3339(&parsed.expiration).map_err(|e| {
        CloudError::credentials(format!(
            "the metadata credentials of role {role:?} have a bad Expiration {:?}: {e}",
            parsed.expiration
        ))
    })?;
    Ok(
        Credentials::new(parsed.access_key_id, parsed.access_key_secret)
            .with_security_token(parsed.security_token)
            .with_expiration(expiration),
    )
}

impl fmt::Debug for EcsRamRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EcsRamRole")
            .field("name", &self.name)
            .field("base_url", &self.base_url)
            .field("role_name", &self.role_name)
            .field("imds_v1_disabled", &self.imds_v1_disabled)
            .finish_non_exhaustive()
    }
}

impl CredentialProvider for EcsRamRole {
    fn credentials(&self) -> BoxFuture<'_, Result<Credentials, CloudError>> {
        Box::pin(async move {
            let mut cache = self.cache.lock().await;
            if let Some(cached) = cache.as_ref().filter(|c| self.is_fresh(c)) {
                return Ok(cached.clone());
            }
            match self.fetch().await {
                Ok(fresh) => {
                    tracing::debug!(provider = %self.name, expiration = ?fresh.expiration().map(humantime::format_rfc3339_seconds), "fetched ECS RAM role credentials");
                    *cache = Some(fresh.clone());
                    Ok(fresh)
                }
                // A failed early refresh is no reason to stop while the old
                // triple is still valid.
                Err(err) => match cache.as_ref() {
                    Some(old) if old.expiration().is_some_and(|e| SystemTime::now() < e) => {
                        // Counted here: the caller sees no error. A failure
                        // that is returned is counted by the client.
                        crate::metrics::global()
                            .credential_refresh_failures
                            .inc([self.name.as_str()]);
                        tracing::warn!(provider = %self.name, error = %err, "refreshing ECS RAM role credentials failed; using the current ones until they expire");
                        Ok(old.clone())
                    }
                    _ => Err(err),
                },
            }
        })
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn invalidate(&self) {
        // try_lock: a refresh in progress replaces the entry anyway.
        if let Ok(mut cache) = self.cache.try_lock() {
            *cache = None;
        }
    }
}

/// Inputs of the credential chain. The environment is a map so tests can
/// inject one; `from_process_env` reads the real one.
#[derive(Clone)]
pub struct ChainConfig {
    pub env: HashMap<String, String>,
    /// The home directory holding `.aliyun/config.json` and
    /// `.alibabacloud/credentials.ini`.
    pub home: Option<PathBuf>,
    /// The metadata service's base URL (`http://100.100.100.200`).
    pub ecs_metadata_url: String,
    /// Connect and read timeout of each metadata request.
    pub ecs_metadata_timeout: Duration,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            env: HashMap::new(),
            home: None,
            ecs_metadata_url: DEFAULT_ECS_METADATA_URL.to_owned(),
            ecs_metadata_timeout: Duration::from_secs(1),
        }
    }
}

impl ChainConfig {
    /// The process environment and `$HOME`.
    pub fn from_process_env() -> Self {
        let env: HashMap<String, String> = std::env::vars().collect();
        let home = env
            .get("HOME")
            .or_else(|| env.get("USERPROFILE"))
            .filter(|h| !h.is_empty())
            .map(PathBuf::from);
        Self {
            env,
            home,
            ..Self::default()
        }
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.env
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn flag(&self, name: &str) -> bool {
        self.var(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

impl fmt::Debug for ChainConfig {
    // The environment may hold the secret itself: show only the names.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut names: Vec<&String> = self.env.keys().collect();
        names.sort();
        f.debug_struct("ChainConfig")
            .field("env_names", &names)
            .field("home", &self.home)
            .field("ecs_metadata_url", &self.ecs_metadata_url)
            .field("ecs_metadata_timeout", &self.ecs_metadata_timeout)
            .finish()
    }
}

pub const ENV_ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ENV_ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const ENV_SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
pub const ENV_PROFILE: &str = "ALIBABA_CLOUD_PROFILE";
pub const ENV_CLI_PROFILE_DISABLED: &str = "ALIBABA_CLOUD_CLI_PROFILE_DISABLED";
pub const ENV_CREDENTIALS_FILE: &str = "ALIBABA_CLOUD_CREDENTIALS_FILE";
pub const ENV_ECS_METADATA: &str = "ALIBABA_CLOUD_ECS_METADATA";
pub const ENV_ECS_METADATA_DISABLED: &str = "ALIBABA_CLOUD_ECS_METADATA_DISABLED";
pub const ENV_IMDSV1_DISABLED: &str = "ALIBABA_CLOUD_IMDSV1_DISABLED";

/// One source's outcome.
enum Found {
    Provider(Arc<dyn CredentialProvider>),
    /// An ECS RAM role named by a profile or file: probed like step 4.
    EcsRole(String, String),
}

/// Resolves the official chain, in order: environment, CLI profile
/// (`~/.aliyun/config.json`), credentials file
/// (`~/.alibabacloud/credentials.ini`), ECS RAM role. The first source that
/// yields credentials wins; when none does, the error lists each source and
/// why it gave nothing. OIDC (RRSA) and `ALIBABA_CLOUD_CREDENTIALS_URI` are
/// not supported; when configured they are reported as skipped.
pub async fn default_chain(
    config: &ChainConfig,
) -> Result<Arc<dyn CredentialProvider>, CloudError> {
    let mut tried: Vec<String> = Vec::new();

    if let Some(found) = note(&mut tried, "environment", from_env(config)) {
        return Ok(found);
    }
    for (name, var) in [
        ("OIDC role (RRSA)", "ALIBABA_CLOUD_OIDC_TOKEN_FILE"),
        ("credentials URI", "ALIBABA_CLOUD_CREDENTIALS_URI"),
    ] {
        if config.var(var).is_some() {
            tried.push(format!(
                "{name}: {var} is set, but this source is not supported; skipped"
            ));
        }
    }
    let sources: [(&str, Result<Found, String>); 2] = [
        ("CLI profile", from_cli_profile(config)),
        ("credentials file", from_ini_file(config)),
    ];
    for (label, result) in sources {
        let found = match result {
            Ok(Found::Provider(p)) => return Ok(p),
            Ok(Found::EcsRole(role, name)) => ecs_probe(config, Some(role), name).await,
            Err(why) => Err(why),
        };
        if let Some(p) = note(&mut tried, label, found) {
            return Ok(p);
        }
    }
    let ecs = if config.flag(ENV_ECS_METADATA_DISABLED) {
        Err(format!("disabled by {ENV_ECS_METADATA_DISABLED}"))
    } else {
        let role = config.var(ENV_ECS_METADATA).map(str::to_owned);
        ecs_probe(config, role, "default/ecs_ram_role".to_owned()).await
    };
    if let Some(p) = note(&mut tried, "ECS RAM role", ecs) {
        return Ok(p);
    }

    Err(CloudError::credentials(format!(
        "no Alibaba Cloud credentials found; tried, in order: {}",
        tried
            .iter()
            .enumerate()
            .map(|(i, t)| format!("{}) {t}", i + 1))
            .collect::<Vec<_>>()
            .join("; ")
    )))
}

/// Records a failed source; passes a found provider through.
fn note(
    tried: &mut Vec<String>,
    label: &str,
    result: Result<Arc<dyn CredentialProvider>, String>,
) -> Option<Arc<dyn CredentialProvider>> {
    match result {
        Ok(provider) => {
            tracing::info!(
                provider = provider.name(),
                "using Alibaba Cloud credentials"
            );
            Some(provider)
        }
        Err(why) => {
            tracing::debug!(source = label, reason = %why, "credential source gave nothing");
            tried.push(format!("{label}: {why}"));
            None
        }
    }
}

fn from_env(config: &ChainConfig) -> Result<Arc<dyn CredentialProvider>, String> {
    let id = config.var(ENV_ACCESS_KEY_ID);
    let secret = config.var(ENV_ACCESS_KEY_SECRET);
    match (id, secret) {
        (Some(id), Some(secret)) => {
            let mut creds = Credentials::new(id, secret);
            if let Some(token) = config.var(ENV_SECURITY_TOKEN) {
                creds = creds.with_security_token(token);
            }
            Ok(Arc::new(
                StaticCredentials::new(creds).with_name("default/env"),
            ))
        }
        (Some(_), None) => Err(format!(
            "{ENV_ACCESS_KEY_ID} is set but {ENV_ACCESS_KEY_SECRET} is not"
        )),
        (None, Some(_)) => Err(format!(
            "{ENV_ACCESS_KEY_SECRET} is set but {ENV_ACCESS_KEY_ID} is not"
        )),
        (None, None) => Err(format!(
            "{ENV_ACCESS_KEY_ID} and {ENV_ACCESS_KEY_SECRET} are not set"
        )),
    }
}

/// `~/.aliyun/config.json`, as the aliyun CLI writes it.
#[derive(Deserialize, Default)]
struct CliConfig {
    #[serde(default)]
    current: String,
    #[serde(default)]
    profiles: Vec<CliProfile>,
}

#[derive(Deserialize, Default)]
struct CliProfile {
    #[serde(default)]
    name: String,
    #[serde(default)]
    mode: String,
    #[serde(default)]
    access_key_id: String,
    #[serde(default)]
    access_key_secret: String,
    #[serde(default)]
    sts_token: String,
    #[serde(default)]
    ram_role_name: String,
}

fn from_cli_profile(config: &ChainConfig) -> Result<Found, String> {
    if config.flag(ENV_CLI_PROFILE_DISABLED) {
        return Err(format!("disabled by {ENV_CLI_PROFILE_DISABLED}"));
    }
    let path = config
        .home
        .as_ref()
        .ok_or("no home directory to find .aliyun/config.json in")?
        .join(".aliyun")
        .join("config.json");
    let text = read_file(&path)?;
    let parsed: CliConfig = serde_json::from_str(&text)
        .map_err(|e| format!("{} is not valid JSON: {e}", path.display()))?;
    let wanted = config
        .var(ENV_PROFILE)
        .map(str::to_owned)
        .unwrap_or_else(|| {
            if parsed.current.is_empty() {
                "default".to_owned()
            } else {
                parsed.current.clone()
            }
        });
    let profile = parsed
        .profiles
        .iter()
        .find(|p| p.name == wanted)
        .ok_or_else(|| format!("{} has no profile {wanted:?}", path.display()))?;
    let where_ = format!("profile {wanted:?} in {}", path.display());
    match profile.mode.as_str() {
        "AK" | "StsToken" => {
            if profile.access_key_id.is_empty() || profile.access_key_secret.is_empty() {
                return Err(format!("{where_} lacks access_key_id or access_key_secret"));
            }
            let mut creds = Credentials::new(&profile.access_key_id, &profile.access_key_secret);
            if profile.mode == "StsToken" {
                if profile.sts_token.is_empty() {
                    return Err(format!("{where_} is in StsToken mode but has no sts_token"));
                }
                creds = creds.with_security_token(&profile.sts_token);
            }
            let name = format!(
                "default/cli_profile/{}",
                if creds.is_sts() {
                    "static_sts"
                } else {
                    "static_ak"
                }
            );
            Ok(Found::Provider(Arc::new(
                StaticCredentials::new(creds).with_name(name),
            )))
        }
        "EcsRamRole" if !profile.ram_role_name.is_empty() => Ok(Found::EcsRole(
            profile.ram_role_name.clone(),
            "default/cli_profile/ecs_ram_role".to_owned(),
        )),
        mode => Err(format!(
            "{where_} has mode {mode:?}; supported: AK, StsToken, EcsRamRole"
        )),
    }
}

fn from_ini_file(config: &ChainConfig) -> Result<Found, String> {
    let path = match config.var(ENV_CREDENTIALS_FILE) {
        Some(p) => PathBuf::from(p),
        None => config
            .home
            .as_ref()
            .ok_or("no home directory to find .alibabacloud/credentials.ini in")?
            .join(".alibabacloud")
            .join("credentials.ini"),
    };
    let text = read_file(&path)?;
    let section_name = config.var(ENV_PROFILE).unwrap_or("default");
    let sections = parse_ini(&text);
    let section = sections
        .get(section_name)
        .ok_or_else(|| format!("{} has no section [{section_name}]", path.display()))?;
    let get = |key: &str| {
        section
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    };
    let where_ = format!("section [{section_name}] of {}", path.display());
    match get("type") {
        Some("access_key") => match (get("access_key_id"), get("access_key_secret")) {
            (Some(id), Some(secret)) => Ok(Found::Provider(Arc::new(
                StaticCredentials::new(Credentials::new(id, secret))
                    .with_name("default/profile/static_ak"),
            ))),
            _ => Err(format!("{where_} lacks access_key_id or access_key_secret")),
        },
        Some("ecs_ram_role") => match get("role_name") {
            Some(role) => Ok(Found::EcsRole(
                role.to_owned(),
                "default/profile/ecs_ram_role".to_owned(),
            )),
            None => Err(format!(
                "{where_} is of type ecs_ram_role but has no role_name"
            )),
        },
        Some(other) => Err(format!(
            "{where_} has type {other:?}; supported: access_key, ecs_ram_role"
        )),
        None => Err(format!("{where_} has no type")),
    }
}

fn read_file(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => format!("{} does not exist", path.display()),
        _ => format!("{} cannot be read: {e}", path.display()),
    })
}

/// A minimal INI reader: `[section]`, `key = value`, values cut at `#`,
/// lines starting with `;` or `#` ignored.
fn parse_ini(text: &str) -> HashMap<String, HashMap<String, String>> {
    let mut sections: HashMap<String, HashMap<String, String>> = HashMap::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let line = line.trim();
        if line.is_empty() || line.starts_with(';') || line.starts_with('#') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            let name = name.trim().to_owned();
            sections.entry(name.clone()).or_default();
            current = Some(name);
            continue;
        }
        if let (Some(section), Some((key, value))) = (&current, line.split_once('=')) {
            let value = value.split('#').next().unwrap_or_default().trim();
            sections
                .entry(section.clone())
                .or_default()
                .insert(key.trim().to_owned(), value.to_owned());
        }
    }
    sections
}

/// Builds the ECS provider and fetches once, so a gateway off ECS learns at
/// startup rather than on its first request.
async fn ecs_probe(
    config: &ChainConfig,
    role: Option<String>,
    name: String,
) -> Result<Arc<dyn CredentialProvider>, String> {
    let provider = EcsRamRole::new(&config.ecs_metadata_url, role, config.ecs_metadata_timeout)
        .map_err(|e| e.message().to_owned())?
        .with_imds_v1_disabled(config.flag(ENV_IMDSV1_DISABLED))
        .with_name(name);
    match provider.credentials().await {
        Ok(_) => Ok(Arc::new(provider)),
        Err(e) => Err(format!(
            "{} (metadata service {})",
            e.message(),
            config.ecs_metadata_url
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_hides_secrets() {
        let creds = Credentials::new("LTAI5tFAKEACCESSKEYID", "FakeSecret0123456789abcdefABCDEF")
            .with_security_token("CAIS.FAKE+STS/Token==");
        let shown = format!("{creds:?} {:?}", StaticCredentials::new(creds.clone()));
        assert!(!shown.contains("FakeSecret"), "{shown}");
        assert!(!shown.contains("CAIS"), "{shown}");
        assert!(!shown.contains("LTAI5tFAKEACCESSKEYID"), "{shown}");
        assert!(shown.contains("LTAI***"), "{shown}");
    }

    #[test]
    fn ini_values_are_cut_at_hash() {
        let ini = parse_ini(
            "; c\n[default]\ntype = access_key # comment\naccess_key_id=a\n[other]\nx = y\n",
        );
        assert_eq!(ini["default"]["type"], "access_key");
        assert_eq!(ini["default"]["access_key_id"], "a");
        assert_eq!(ini["other"]["x"], "y");
    }

    #[test]
    fn metadata_answers_must_say_success() {
        let bad = r#"{"Code":"Failed","AccessKeyId":"a","AccessKeySecret":"b","SecurityToken":"c","Expiration":"2030-01-01T00:00:00Z"}"#;
        assert!(parse_metadata_credentials(bad, "r").is_err());
        let good = bad.replace("Failed", "Success");
        let creds = parse_metadata_credentials(&good, "r").unwrap();
        assert_eq!(creds.security_token(), Some("c"));
        assert!(creds.expiration().is_some());
    }
}
