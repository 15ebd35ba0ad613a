//! The ECS RAM role: STS credentials from the instance metadata service,
//! IMDSv2 token first, cached and replaced before they expire.

use std::{
    fmt,
    time::{Duration, SystemTime},
};

use serde::Deserialize;

use super::{BoxFuture, CredentialMetrics, CredentialProvider, Credentials};
use crate::cloud::{error::CloudError, sign::percent_encode};

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
    cache: tokio::sync::Mutex<Cache>,
    refresh_retry: Duration,
    metrics: CredentialMetrics,
}

/// How long after a failed early refresh the next is tried, the current
/// triple (still valid) serving meanwhile: without the pause every call
/// in the refresh window would wait on a failing metadata service.
pub const ECS_REFRESH_RETRY: Duration = Duration::from_secs(30);

#[derive(Default)]
struct Cache {
    credentials: Option<Credentials>,
    early_refresh_failed_at: Option<std::time::Instant>,
}

impl EcsRamRole {
    /// `base_url` is `http://100.100.100.200` on ECS (a local fake in
    /// tests); `role_name` `None` asks the metadata service for it.
    pub fn new(
        base_url: impl Into<String>,
        role_name: Option<String>,
        timeout: Duration,
    ) -> Result<Self, CloudError> {
        crate::cloud::client::install_crypto_provider();
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
            cache: tokio::sync::Mutex::new(Cache::default()),
            refresh_retry: ECS_REFRESH_RETRY,
            metrics: CredentialMetrics::default(),
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

    /// How long after a failed early refresh the next is tried.
    pub fn with_refresh_retry(mut self, pause: Duration) -> Self {
        self.refresh_retry = pause;
        self
    }

    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Where the failed early refreshes are counted.
    pub fn with_metrics(mut self, metrics: CredentialMetrics) -> Self {
        self.metrics = metrics;
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
            if let Some(cached) = cache.credentials.as_ref().filter(|c| self.is_fresh(c)) {
                return Ok(cached.clone());
            }
            let still_valid =
                |c: &Credentials| c.expiration().is_some_and(|e| SystemTime::now() < e);
            if let (Some(old), Some(failed_at)) =
                (cache.credentials.as_ref(), cache.early_refresh_failed_at)
                && still_valid(old)
                && failed_at.elapsed() < self.refresh_retry
            {
                return Ok(old.clone());
            }
            match self.fetch().await {
                Ok(fresh) => {
                    tracing::debug!(provider = %self.name, expiration = ?fresh.expiration().map(humantime::format_rfc3339_seconds), "fetched ECS RAM role credentials");
                    *cache = Cache {
                        credentials: Some(fresh.clone()),
                        early_refresh_failed_at: None,
                    };
                    Ok(fresh)
                }
                // A failed early refresh is no reason to stop while the old
                // triple is still valid.
                Err(err) => match cache.credentials.clone() {
                    Some(old) if still_valid(&old) => {
                        cache.early_refresh_failed_at = Some(std::time::Instant::now());
                        // Counted here: the caller sees no error. A failure
                        // that is returned is counted by the client.
                        self.metrics.refresh_failed(&self.name);
                        tracing::warn!(provider = %self.name, error = %err, retry_in = ?self.refresh_retry, "refreshing ECS RAM role credentials failed; using the current ones until they expire");
                        Ok(old)
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
            *cache = Cache::default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
