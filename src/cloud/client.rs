//! The VPC API client: one signed, retried, traced HTTP exchange per
//! operation, and the four typed operations the gateway needs.
//!
//! Every call resolves the region's endpoint, then loops over attempts:
//! fetch credentials, stamp a fresh date and nonce, sign, send, decode.
//! The operation's parameters — the `ClientToken` included — are built once
//! before the loop, so a retried modify can never become a second change.
//! Each attempt is its own OTel-style HTTP client span; neither spans nor
//! logs nor errors carry the query string, the signature, the AccessKeyId
//! or the token.

use std::{
    collections::HashMap,
    sync::{Arc, Once},
    time::{Duration, SystemTime},
};

use reqwest::header::{ACCEPT, CONTENT_LENGTH, HeaderMap, HeaderName, HeaderValue, USER_AGENT};
use serde::de::DeserializeOwned;
use tokio::time::Instant;
use tracing::{Instrument, Span, field::Empty};

use super::{
    credentials::{CredentialProvider, Credentials},
    endpoint::{Endpoint, Endpoints},
    error::{CloudError, CloudErrorClass, code},
    retry::Decision,
    sign::{self, V1Input, V3Input},
    wire,
};
use crate::{
    domain::{Changes, RegionId, SslVpnServer, VpnGateway},
    metrics,
};

pub use super::retry::RetryPolicy;

/// The VPC API version all four operations belong to.
pub const API_VERSION: &str = "2016-04-28";

/// The largest page DescribeVpnGateways and DescribeSslVpnServers allow.
pub const MAX_PAGE_SIZE: u32 = 50;

/// Which signature to send.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum SignatureVersion {
    /// ACS3-HMAC-SHA256, the current SDKs' default.
    #[default]
    V3,
    /// The legacy RPC signature: HMAC-SHA1, SignatureVersion 1.0.
    V1,
}

/// How the client reaches the cloud.
#[derive(Clone, Debug)]
pub struct CloudConfig {
    pub signature_version: SignatureVersion,
    /// Sends every region here (`http://127.0.0.1:18080`, a proxy...).
    pub endpoint: Option<String>,
    /// Per-region endpoints; win over `endpoint`.
    pub region_endpoints: HashMap<String, String>,
    pub connect_timeout: Duration,
    /// The longest wait for any read from the connection.
    pub read_timeout: Duration,
    pub retry: RetryPolicy,
    pub user_agent: String,
}

impl Default for CloudConfig {
    fn default() -> Self {
        Self {
            signature_version: SignatureVersion::V3,
            endpoint: None,
            region_endpoints: HashMap::new(),
            connect_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(10),
            retry: RetryPolicy::default(),
            user_agent: format!("sslvpn-gateway/{}", env!("CARGO_PKG_VERSION")),
        }
    }
}

/// Installs ring as the process's rustls provider, once. reqwest is built
/// without a provider of its own (`rustls-no-provider`), and tonic uses
/// ring, so both share one; without it building a client panics.
pub(crate) fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // Err means another provider is already installed: keep that one.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A ModifySslVpnServer call. Only the fields set in `changes` are sent.
#[derive(Clone, Copy, Debug)]
pub struct ModifyRequest<'a> {
    pub region: &'a RegionId,
    pub ssl_vpn_server_id: &'a str,
    /// Idempotency token; identical on every attempt. Empty: none sent.
    pub client_token: &'a str,
    pub changes: &'a Changes,
}

/// The cloud's answer to a modify: the server as of the answer (an async
/// change may still be running).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ModifyResponse {
    pub request_id: String,
    pub server: SslVpnServer,
}

/// DescribeSslVpnServers filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ServerFilter {
    pub ssl_vpn_server_id: Option<String>,
    pub vpn_gateway_id: Option<String>,
    pub name: Option<String>,
}

impl ServerFilter {
    pub fn by_server(id: impl Into<String>) -> Self {
        Self {
            ssl_vpn_server_id: Some(id.into()),
            ..Self::default()
        }
    }

    pub fn by_gateway(id: impl Into<String>) -> Self {
        Self {
            vpn_gateway_id: Some(id.into()),
            ..Self::default()
        }
    }
}

/// DescribeVpnGateways filters.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GatewayFilter {
    pub vpn_gateway_id: Option<String>,
    pub vpc_id: Option<String>,
    /// `init`, `provisioning`, `active`, `updating` or `deleting`.
    pub status: Option<String>,
    /// `Normal` or `FinancialLocked`.
    pub business_status: Option<String>,
    /// Tag key/value pairs (up to 20), sent as `Tag.N.Key`/`Tag.N.Value`.
    pub tags: Vec<(String, String)>,
}

/// Which page to fetch: 1-based number, size 1 to 50.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PageRequest {
    pub number: u32,
    pub size: u32,
}

impl Default for PageRequest {
    fn default() -> Self {
        Self {
            number: 1,
            size: MAX_PAGE_SIZE,
        }
    }
}

impl PageRequest {
    pub fn new(number: u32, size: u32) -> Self {
        Self { number, size }
    }

    /// The following page of the same size.
    pub fn next(self) -> Self {
        Self {
            number: self.number.saturating_add(1),
            ..self
        }
    }

    fn params(self) -> [(String, String); 2] {
        [
            ("PageNumber".into(), self.number.max(1).to_string()),
            (
                "PageSize".into(),
                self.size.clamp(1, MAX_PAGE_SIZE).to_string(),
            ),
        ]
    }
}

/// One page of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub page_number: u32,
    pub page_size: u32,
    pub total_count: u32,
    pub request_id: String,
}

impl<T> Page<T> {
    /// True when later pages hold more items.
    pub fn has_more(&self) -> bool {
        u64::from(self.page_number) * u64::from(self.page_size) < u64::from(self.total_count)
    }

    /// The request for the following page.
    pub fn next_request(&self) -> PageRequest {
        PageRequest::new(self.page_number.saturating_add(1), self.page_size.max(1))
    }
}

fn to_u32(n: i64) -> u32 {
    u32::try_from(n.max(0)).unwrap_or(u32::MAX)
}

/// The Alibaba Cloud VPC client. Cheap to clone; clones share the
/// connection pool.
#[derive(Clone)]
pub struct VpcClient {
    inner: Arc<Inner>,
}

struct Inner {
    http: reqwest::Client,
    endpoints: Endpoints,
    credentials: Arc<dyn CredentialProvider>,
    config: CloudConfig,
}

impl std::fmt::Debug for VpcClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VpcClient")
            .field("endpoints", &self.inner.endpoints)
            .field("credentials", &self.inner.credentials.name())
            .field("signature_version", &self.inner.config.signature_version)
            .finish_non_exhaustive()
    }
}

impl VpcClient {
    /// Checks the endpoints and builds the connection pool.
    pub fn new(
        config: CloudConfig,
        credentials: Arc<dyn CredentialProvider>,
    ) -> Result<Self, CloudError> {
        install_crypto_provider();
        let endpoints = Endpoints::new(config.endpoint.as_deref(), &config.region_endpoints)?;
        // Certificate verification stays on (the platform verifier); there
        // is deliberately no switch to turn it off.
        let http = reqwest::Client::builder()
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(Duration::from_secs(90))
            .tcp_keepalive(Duration::from_secs(30))
            .build()
            .map_err(|e| CloudError::config(format!("cannot build the HTTP client: {e}")))?;
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                credentials,
                config,
            }),
        })
    }

    /// Where `region`'s requests go.
    pub fn endpoint(&self, region: &RegionId) -> Result<Endpoint, CloudError> {
        self.inner.endpoints.resolve(region)
    }

    /// ModifySslVpnServer, sending only the fields set in `req.changes`.
    pub async fn modify_ssl_vpn_server(
        &self,
        req: &ModifyRequest<'_>,
        deadline: Option<Instant>,
    ) -> Result<ModifyResponse, CloudError> {
        let mut params = vec![
            ("RegionId".to_owned(), req.region.as_str().to_owned()),
            (
                "SslVpnServerId".to_owned(),
                req.ssl_vpn_server_id.to_owned(),
            ),
        ];
        if !req.client_token.is_empty() {
            params.push(("ClientToken".to_owned(), req.client_token.to_owned()));
        }
        params.extend(
            req.changes
                .to_api_params()
                .into_iter()
                .map(|(k, v)| (k.to_owned(), v)),
        );
        let body: wire::WireSslVpnServer = self
            .call("ModifySslVpnServer", req.region, params, deadline)
            .await?;
        let request_id = body.request_id.clone();
        let mut server = body.into_domain();
        if server.region_id.is_empty() {
            server.region_id = req.region.as_str().to_owned();
        }
        Ok(ModifyResponse { request_id, server })
    }

    /// DescribeSslVpnServers: one page.
    pub async fn describe_ssl_vpn_servers(
        &self,
        region: &RegionId,
        filter: &ServerFilter,
        page: PageRequest,
        deadline: Option<Instant>,
    ) -> Result<Page<SslVpnServer>, CloudError> {
        let mut params = vec![("RegionId".to_owned(), region.as_str().to_owned())];
        let optional = [
            ("SslVpnServerId", &filter.ssl_vpn_server_id),
            ("VpnGatewayId", &filter.vpn_gateway_id),
            ("Name", &filter.name),
        ];
        params.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone()))),
        );
        params.extend(page.params());
        let body: wire::DescribeSslVpnServersBody = self
            .call("DescribeSslVpnServers", region, params, deadline)
            .await?;
        Ok(Page {
            items: body
                .ssl_vpn_servers
                .ssl_vpn_server
                .into_iter()
                .map(wire::WireSslVpnServer::into_domain)
                .collect(),
            page_number: to_u32(body.page_number),
            page_size: to_u32(body.page_size),
            total_count: to_u32(body.total_count),
            request_id: body.request_id,
        })
    }

    /// One SSL server by id; `None` when the cloud lists none.
    pub async fn describe_ssl_vpn_server(
        &self,
        region: &RegionId,
        id: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<SslVpnServer>, CloudError> {
        let page = self
            .describe_ssl_vpn_servers(
                region,
                &ServerFilter::by_server(id),
                PageRequest::new(1, 10),
                deadline,
            )
            .await?;
        // Prefer the exact id, in case a filter is ever applied loosely.
        let mut items = page.items;
        let exact = items.iter().position(|s| s.ssl_vpn_server_id == id);
        Ok(match exact {
            Some(i) => Some(items.swap_remove(i)),
            None => items.into_iter().next(),
        })
    }

    /// DescribeVpnGateway.
    pub async fn describe_vpn_gateway(
        &self,
        region: &RegionId,
        gateway_id: &str,
        deadline: Option<Instant>,
    ) -> Result<VpnGateway, CloudError> {
        let params = vec![
            ("RegionId".to_owned(), region.as_str().to_owned()),
            ("VpnGatewayId".to_owned(), gateway_id.to_owned()),
        ];
        let body: wire::WireVpnGateway = self
            .call("DescribeVpnGateway", region, params, deadline)
            .await?;
        if body.vpn_gateway_id.is_empty() {
            // An answer without the gateway: report it as the cloud does.
            return Err(CloudError::new(
                CloudErrorClass::NotFound,
                "InvalidVpnGatewayInstanceId.NotFound",
                format!("the cloud returned no VPN gateway {gateway_id:?}"),
            )
            .with_request_id(Some(body.request_id)));
        }
        Ok(body.into_domain())
    }

    /// DescribeVpnGateways: one page (at most 50).
    pub async fn describe_vpn_gateways(
        &self,
        region: &RegionId,
        filter: &GatewayFilter,
        page: PageRequest,
        deadline: Option<Instant>,
    ) -> Result<Page<VpnGateway>, CloudError> {
        let mut params = vec![("RegionId".to_owned(), region.as_str().to_owned())];
        let optional = [
            ("VpnGatewayId", &filter.vpn_gateway_id),
            ("VpcId", &filter.vpc_id),
            ("Status", &filter.status),
            ("BusinessStatus", &filter.business_status),
        ];
        params.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| v.as_ref().map(|v| (k.to_owned(), v.clone()))),
        );
        params.extend(flatten_tags(&filter.tags));
        params.extend(page.params());
        let body: wire::DescribeVpnGatewaysBody = self
            .call("DescribeVpnGateways", region, params, deadline)
            .await?;
        Ok(Page {
            items: body
                .vpn_gateways
                .vpn_gateway
                .into_iter()
                .map(wire::WireVpnGateway::into_domain)
                .collect(),
            page_number: to_u32(body.page_number),
            page_size: to_u32(body.page_size),
            total_count: to_u32(body.total_count),
            request_id: body.request_id,
        })
    }

    /// One operation with retries, inside a span for the whole call.
    async fn call<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        params: Vec<(String, String)>,
        deadline: Option<Instant>,
    ) -> Result<T, CloudError> {
        let span = tracing::info_span!(
            "vpc.call",
            otel.name = action,
            "acs.action" = action,
            "acs.region" = %region,
            "acs.attempts" = Empty,
            "acs.request_id" = Empty,
            "error.type" = Empty,
        );
        let started = Instant::now();
        let result = async {
            let endpoint = self.inner.endpoints.resolve(region)?;
            self.with_retries(action, region, &endpoint, &params, deadline)
                .await
        }
        .instrument(span.clone())
        .await;
        metrics::global().upstream_call(
            action,
            result.as_ref().map(|_| ()).map_err(CloudError::class),
            started.elapsed(),
        );
        if let Err(err) = &result {
            span.record("error.type", err.code());
            if let Some(id) = err.request_id() {
                span.record("acs.request_id", id);
            }
        }
        result
    }

    async fn with_retries<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        endpoint: &Endpoint,
        params: &[(String, String)],
        deadline: Option<Instant>,
    ) -> Result<T, CloudError> {
        let policy = &self.inner.config.retry;
        let started = Instant::now();
        let limit = policy.limit(started, deadline);
        let mut token_refreshed = false;
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let err = match self
                .attempt(action, region, endpoint, params, attempt, limit, deadline)
                .await
            {
                Ok((value, request_id)) => {
                    let span = Span::current();
                    span.record("acs.attempts", attempt);
                    span.record("acs.request_id", request_id.as_str());
                    return Ok(value);
                }
                Err(err) => err,
            };
            // A rejected STS token may just have been rotated: fetch a fresh
            // one and try once more.
            let decision = if err.code().starts_with("InvalidSecurityToken")
                && !token_refreshed
                && attempt < policy.max_attempts
                && Instant::now() < limit
            {
                token_refreshed = true;
                self.inner.credentials.invalidate();
                Decision::RetryAfter(Duration::ZERO)
            } else {
                policy.decide(&err, attempt, started, deadline)
            };
            match decision {
                Decision::RetryAfter(wait) => {
                    metrics::global().upstream_retries.inc([action]);
                    tracing::warn!(
                        action,
                        attempt,
                        wait_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX),
                        code = err.code(),
                        request_id = err.request_id().unwrap_or(""),
                        "retrying the cloud call: {err}"
                    );
                    tokio::time::sleep(wait).await;
                }
                Decision::GiveUp => {
                    Span::current().record("acs.attempts", attempt);
                    return Err(err.with_attempts(attempt));
                }
            }
        }
    }

    /// One HTTP exchange, bounded by `limit`, in its own client span.
    #[allow(clippy::too_many_arguments)]
    async fn attempt<T: DeserializeOwned>(
        &self,
        action: &'static str,
        region: &RegionId,
        endpoint: &Endpoint,
        params: &[(String, String)],
        attempt: u32,
        limit: Instant,
        deadline: Option<Instant>,
    ) -> Result<(T, String), CloudError> {
        let expired = || {
            if deadline == Some(limit) {
                CloudError::deadline_exceeded(format!(
                    "{action} did not complete before the caller's deadline"
                ))
            } else {
                CloudError::new(
                    CloudErrorClass::Transient,
                    code::TIMEOUT,
                    format!(
                        "{action} did not complete within the retry budget of {:?}",
                        self.inner.config.retry.max_total
                    ),
                )
            }
        };
        if Instant::now() >= limit {
            return Err(expired());
        }
        let span = tracing::info_span!(
            "vpc.http",
            otel.name = "POST",
            otel.kind = "client",
            "http.request.method" = "POST",
            "server.address" = %endpoint.address,
            "server.port" = i64::from(endpoint.port),
            "url.full" = %endpoint.redacted_url(),
            "http.request.resend_count" = i64::from(attempt.saturating_sub(1)),
            "http.response.status_code" = Empty,
            "error.type" = Empty,
            "acs.action" = action,
            "acs.region" = %region,
            "acs.attempt" = attempt,
            "acs.request_id" = Empty,
        );
        let result = tokio::time::timeout_at(limit, self.exchange(action, endpoint, params))
            .instrument(span.clone())
            .await
            .unwrap_or_else(|_| Err(expired()));
        match &result {
            Ok((_, request_id)) => {
                span.record("acs.request_id", request_id.as_str());
            }
            Err(err) => {
                span.record("error.type", err.code());
                if let Some(id) = err.request_id() {
                    span.record("acs.request_id", id);
                }
                tracing::debug!(parent: &span, code = err.code(), "attempt failed: {err}");
            }
        }
        result
    }

    /// Credentials, signature, request, answer.
    async fn exchange<T: DeserializeOwned>(
        &self,
        action: &'static str,
        endpoint: &Endpoint,
        params: &[(String, String)],
    ) -> Result<(T, String), CloudError> {
        let credentials = self
            .inner
            .credentials
            .credentials()
            .await
            .inspect_err(|_| {
                metrics::global()
                    .credential_refresh_failures
                    .inc([self.inner.credentials.name()]);
            })?;
        let date = sign::format_date(SystemTime::now());
        let nonce = sign::new_nonce();
        let (url, headers) = self.sign(action, endpoint, params, &credentials, &date, &nonce);
        let headers = self.build_request_headers(headers)?;
        let secrets = [
            credentials.access_key_id(),
            credentials.access_key_secret(),
            credentials.security_token().unwrap_or(""),
        ];

        let response = self
            .inner
            .http
            .post(url)
            .headers(headers)
            .send()
            .await
            .map_err(|e| transport_error(e, endpoint))?;
        let status = response.status().as_u16();
        Span::current().record("http.response.status_code", i64::from(status));
        let retry_after = response
            .headers()
            .get("x-acs-retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .filter(|ms| *ms > 0)
            .map(Duration::from_millis);
        let body = response
            .bytes()
            .await
            .map_err(|e| transport_error(e, endpoint))?;
        let request_id = serde_json::from_slice::<wire::RequestIdOnly>(&body)
            .map(|r| r.request_id)
            .unwrap_or_default();

        if (200..300).contains(&status) {
            let value = serde_json::from_slice::<T>(&body).map_err(|e| {
                CloudError::invalid_response(
                    format!(
                        "{action} answered HTTP {status} with a body this client cannot read: {e}"
                    ),
                    Some(request_id.clone()),
                )
            })?;
            Ok((value, request_id))
        } else {
            Err(CloudError::from_response(status, retry_after, &body).redact(&secrets))
        }
    }

    /// The URL (with its query) and the headers the signature needs.
    fn sign(
        &self,
        action: &str,
        endpoint: &Endpoint,
        params: &[(String, String)],
        credentials: &Credentials,
        date: &str,
        nonce: &str,
    ) -> (String, Vec<(String, String)>) {
        let acs_headers = vec![
            ("x-acs-action".to_owned(), action.to_owned()),
            ("x-acs-version".to_owned(), API_VERSION.to_owned()),
            (
                "x-acs-credentials-provider".to_owned(),
                self.inner.credentials.name().to_owned(),
            ),
        ];
        match self.inner.config.signature_version {
            SignatureVersion::V3 => {
                let signed = sign::sign_v3(
                    &V3Input {
                        method: "POST",
                        host: &endpoint.authority,
                        path: "/",
                        query: params,
                        headers: &acs_headers,
                        body: b"",
                        date,
                        nonce,
                    },
                    credentials,
                );
                let url = if signed.canonical_query.is_empty() {
                    format!("{}/", endpoint.base_url)
                } else {
                    format!("{}/?{}", endpoint.base_url, signed.canonical_query)
                };
                (url, signed.headers)
            }
            SignatureVersion::V1 => {
                let signed = sign::sign_v1(
                    &V1Input {
                        method: "POST",
                        action,
                        version: API_VERSION,
                        params,
                        date,
                        nonce,
                        format: "json",
                    },
                    credentials,
                );
                // V1 signs no headers; these only tell the gateway what comes.
                (
                    format!("{}/?{}", endpoint.base_url, signed.url_query()),
                    acs_headers,
                )
            }
        }
    }

    /// The one place where outgoing request headers are assembled. The W3C
    /// `traceparent` of the current (HTTP client) span is added last: it is
    /// not signed, so it can be added after signing.
    fn build_request_headers(
        &self,
        signed: Vec<(String, String)>,
    ) -> Result<HeaderMap, CloudError> {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        // The body is always empty; say so, as the SDKs do (hyper omits it).
        headers.insert(CONTENT_LENGTH, HeaderValue::from_static("0"));
        if let Ok(ua) = HeaderValue::from_str(&self.inner.config.user_agent) {
            headers.insert(USER_AGENT, ua);
        }
        for (name, value) in signed {
            // reqwest writes Host from the URL: the same authority we signed.
            if name == "host" {
                continue;
            }
            let header_name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| CloudError::config(format!("{name:?} is not a valid header name")))?;
            // The value may be a token: name the header, never the value.
            let mut header_value = HeaderValue::from_str(&value).map_err(|_| {
                CloudError::credentials(format!(
                    "the value of header {name} is not a valid header value"
                ))
            })?;
            if matches!(name.as_str(), "authorization" | "x-acs-security-token") {
                header_value.set_sensitive(true);
            }
            headers.insert(header_name, header_value);
        }
        crate::telemetry::propagation::inject_current(&mut headers);
        Ok(headers)
    }
}

/// Tag filters flattened the API's way: `Tag.1.Key`, `Tag.1.Value`, ...
fn flatten_tags(tags: &[(String, String)]) -> Vec<(String, String)> {
    tags.iter()
        .enumerate()
        .flat_map(|(i, (k, v))| {
            [
                (format!("Tag.{}.Key", i + 1), k.clone()),
                (format!("Tag.{}.Value", i + 1), v.clone()),
            ]
        })
        .collect()
}

/// A failure below HTTP. reqwest's messages name the URL, whose query holds
/// the signature (and, for V1, the AccessKeyId and token), so the URL is
/// dropped and the endpoint without its query named instead.
fn transport_error(err: reqwest::Error, endpoint: &Endpoint) -> CloudError {
    let (code, what) = if err.is_timeout() {
        (code::TIMEOUT, "timed out")
    } else if err.is_connect() {
        (code::CONNECT_FAILED, "could not connect")
    } else {
        (code::TRANSPORT, "failed")
    };
    let err = err.without_url();
    let mut causes = Vec::new();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        causes.push(cause.to_string());
        source = cause.source();
    }
    let detail = if causes.is_empty() {
        err.to_string()
    } else {
        format!("{err}: {}", causes.join(": "))
    };
    CloudError::new(
        CloudErrorClass::Transient,
        code,
        format!(
            "the request to {} {what}: {detail}",
            endpoint.redacted_url()
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_flatten_with_one_based_indexes() {
        let tags = vec![
            ("env".to_owned(), "test".to_owned()),
            ("a".to_owned(), "b".to_owned()),
        ];
        assert_eq!(
            flatten_tags(&tags),
            vec![
                ("Tag.1.Key".to_owned(), "env".to_owned()),
                ("Tag.1.Value".to_owned(), "test".to_owned()),
                ("Tag.2.Key".to_owned(), "a".to_owned()),
                ("Tag.2.Value".to_owned(), "b".to_owned()),
            ]
        );
    }

    #[test]
    fn pages_clamp_and_know_when_more_remain() {
        let p = PageRequest::new(0, 500).params();
        assert_eq!(p[0].1, "1");
        assert_eq!(p[1].1, "50");
        let page = Page::<()> {
            items: vec![],
            page_number: 1,
            page_size: 50,
            total_count: 51,
            request_id: String::new(),
        };
        assert!(page.has_more());
        assert_eq!(page.next_request(), PageRequest::new(2, 50));
        assert!(
            !Page::<()> {
                total_count: 50,
                ..page
            }
            .has_more()
        );
    }
}
