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

mod chain;
mod ecs;

use std::{fmt, future::Future, pin::Pin, time::SystemTime};

use prometheus_client::{
    encoding::EncodeLabelSet,
    metrics::{counter::Counter, family::Family},
    registry::Registry,
};

use super::error::CloudError;

pub use chain::{
    ChainConfig, ENV_ACCESS_KEY_ID, ENV_ACCESS_KEY_SECRET, ENV_CLI_PROFILE_DISABLED,
    ENV_CREDENTIALS_FILE, ENV_ECS_METADATA, ENV_ECS_METADATA_DISABLED, ENV_IMDSV1_DISABLED,
    ENV_PROFILE, ENV_SECURITY_TOKEN, default_chain,
};
pub use ecs::{DEFAULT_ECS_METADATA_URL, ECS_REFRESH_BEFORE_EXPIRY, ECS_REFRESH_RETRY, EcsRamRole};

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

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ProviderLabel {
    provider: String,
}

/// `sslvpn_credential_refresh_failures_total{provider}`: counted by the
/// client for failures it returns, and by the ECS provider for the early
/// refreshes that failed while the current triple still served. `Default`
/// counts into a family no registry renders.
#[derive(Clone, Default)]
pub struct CredentialMetrics {
    refresh_failures: Family<ProviderLabel, Counter>,
}

impl CredentialMetrics {
    pub fn new(registry: &mut Registry) -> Self {
        let metrics = Self::default();
        registry.register(
            "sslvpn_credential_refresh_failures",
            "Failures to obtain or refresh the cloud credentials, by credential provider",
            metrics.refresh_failures.clone(),
        );
        metrics
    }

    /// One failure of the provider named `provider`.
    pub fn refresh_failed(&self, provider: &str) {
        self.refresh_failures
            .get_or_create(&ProviderLabel {
                provider: provider.to_owned(),
            })
            .inc();
    }
}

impl fmt::Debug for CredentialMetrics {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CredentialMetrics").finish_non_exhaustive()
    }
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
}
