//! The official credential chain: environment, CLI profile, credentials
//! file, ECS RAM role — resolved once at start-up, with every source tried
//! and why it gave nothing in the error when none did.

use std::{
    collections::HashMap,
    fmt,
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};

use serde::Deserialize;

use super::{
    CredentialMetrics, CredentialProvider, Credentials, DEFAULT_ECS_METADATA_URL, EcsRamRole,
    StaticCredentials,
};
use crate::cloud::error::CloudError;

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
    /// Where the ECS provider counts its failed refreshes.
    pub metrics: CredentialMetrics,
}

impl Default for ChainConfig {
    fn default() -> Self {
        Self {
            env: HashMap::new(),
            home: None,
            ecs_metadata_url: DEFAULT_ECS_METADATA_URL.to_owned(),
            ecs_metadata_timeout: Duration::from_secs(1),
            metrics: CredentialMetrics::default(),
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

/// The variables that, all three set, put the OIDC role (RRSA) second in
/// the official chain.
const OIDC_VARS: [&str; 3] = [
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE",
    "ALIBABA_CLOUD_ROLE_ARN",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN",
];

/// One source's outcome.
enum Found {
    Provider(Arc<dyn CredentialProvider>),
    /// An ECS RAM role named by a profile or file: probed like step 4.
    EcsRole(String, String),
    /// Configured for a kind of credentials this gateway cannot use. The
    /// official chain would stop here with them, so the chain stops too:
    /// going on would run the gateway as whatever identity a later source
    /// has (the node's RAM role, say), which nobody asked for.
    Unsupported(String),
}

/// Resolves the official chain, in order: environment, CLI profile
/// (`~/.aliyun/config.json`), credentials file
/// (`~/.alibabacloud/credentials.ini`), ECS RAM role. The first source that
/// yields credentials wins; when none does, the error lists each source and
/// why it gave nothing. The kinds this gateway does not support (the OIDC
/// role, RAM role ARN profiles, ...) stop the chain with an error when they
/// are configured where the official chain would use them; the credentials
/// URI, last in the official order, is only reported as skipped.
pub async fn default_chain(
    config: &ChainConfig,
) -> Result<Arc<dyn CredentialProvider>, CloudError> {
    let mut tried: Vec<String> = Vec::new();

    if let Some(found) = note(&mut tried, "environment", from_env(config)) {
        return Ok(found);
    }
    if OIDC_VARS.iter().all(|v| config.var(v).is_some()) {
        return Err(unsupported(
            &tried,
            "OIDC role (RRSA)",
            &format!("{} are set", OIDC_VARS.join(", ")),
        ));
    }
    let uri = "ALIBABA_CLOUD_CREDENTIALS_URI";
    if config.var(uri).is_some() {
        tried.push(format!(
            "credentials URI: {uri} is set, but this source is not supported; skipped"
        ));
    }
    let sources: [(&str, Result<Found, String>); 2] = [
        ("CLI profile", from_cli_profile(config)),
        ("credentials file", from_ini_file(config)),
    ];
    for (label, result) in sources {
        let found = match result {
            Ok(Found::Provider(p)) => return Ok(p),
            Ok(Found::EcsRole(role, name)) => ecs_probe(config, Some(role), name).await,
            Ok(Found::Unsupported(what)) => return Err(unsupported(&tried, label, &what)),
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

/// The chain's end at a source configured for credentials it cannot use.
fn unsupported(tried: &[String], label: &str, what: &str) -> CloudError {
    let before = if tried.is_empty() {
        String::new()
    } else {
        format!(" (before it: {})", tried.join("; "))
    };
    CloudError::credentials(format!(
        "{label}: {what}, but this gateway does not support that kind of \
         credentials; it stops rather than fall back to a later source with \
         another identity: configure an AccessKey, an STS token or an ECS RAM \
         role instead{before}"
    ))
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
        "EcsRamRole" => Err(format!(
            "{where_} is in EcsRamRole mode but has no ram_role_name"
        )),
        "" => Err(format!("{where_} has no mode")),
        mode => Ok(Found::Unsupported(format!(
            "{where_} has mode {mode:?} (supported: AK, StsToken, EcsRamRole)"
        ))),
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
        Some(other) => Ok(Found::Unsupported(format!(
            "{where_} has type {other:?} (supported: access_key, ecs_ram_role)"
        ))),
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
        .with_name(name)
        .with_metrics(config.metrics.clone());
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
    fn ini_values_are_cut_at_hash() {
        let ini = parse_ini(
            "; c\n[default]\ntype = access_key # comment\naccess_key_id=a\n[other]\nx = y\n",
        );
        assert_eq!(ini["default"]["type"], "access_key");
        assert_eq!(ini["default"]["access_key_id"], "a");
        assert_eq!(ini["other"]["x"], "y");
    }
}
