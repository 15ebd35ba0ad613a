//! The VPC API client: the four typed operations the gateway needs, each one
//! signed, retried, traced HTTP exchange (the exchange itself is in
//! `exchange`).
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
    time::Duration,
};

use tokio::time::Instant;

use super::{
    budget::{Budget, BudgetConfig, BudgetMetrics, Purpose},
    credentials::CredentialProvider,
    endpoint::{Endpoint, Endpoints},
    error::{CloudError, DRY_RUN_OPERATION},
    wire,
};
use crate::domain::{Changes, RegionId, SslVpnServer, VpnGateway};

pub use self::metrics::UpstreamMetrics;
pub use super::retry::RetryPolicy;

mod exchange;
mod metrics;

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
    /// The account's quotas per API, which every call is spent from.
    pub budget: BudgetConfig,
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
            budget: BudgetConfig::default(),
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
/// connection pool and the metrics.
#[derive(Clone)]
pub struct VpcClient {
    inner: Arc<Inner>,
    metrics: UpstreamMetrics,
    /// The account's quota, shared by every clone.
    budget: Budget,
    /// What this handle's calls are for; callers' go before polls.
    purpose: Purpose,
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
        let budget = Budget::new(config.budget.clone(), BudgetMetrics::default());
        Ok(Self {
            inner: Arc::new(Inner {
                http,
                endpoints,
                credentials,
                config,
            }),
            metrics: UpstreamMetrics::default(),
            // The configuration's quotas, unmetered until `with_budget`
            // hands in the process's shared, metered budget.
            budget,
            purpose: Purpose::Status,
        })
    }

    /// Spends calls from `budget` (shared with every clone).
    pub fn with_budget(mut self, budget: Budget) -> Self {
        self.budget = budget;
        self
    }

    /// A handle whose calls are made for `purpose`.
    pub fn for_purpose(&self, purpose: Purpose) -> Self {
        Self {
            purpose,
            ..self.clone()
        }
    }

    /// The budget calls are spent from.
    pub fn budget(&self) -> &Budget {
        &self.budget
    }

    /// Records the calls into `metrics` (registered by the caller) rather
    /// than into families nobody reads.
    pub fn with_metrics(mut self, metrics: UpstreamMetrics) -> Self {
        self.metrics = metrics;
        self
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
        let body: wire::WireSslVpnServer = self
            .call(
                "ModifySslVpnServer",
                req.region,
                modify_params(req),
                deadline,
            )
            .await?;
        let request_id = body.request_id.clone();
        let mut server = body.into_domain();
        if server.region_id.is_empty() {
            server.region_id = req.region.as_str().to_owned();
        }
        Ok(ModifyResponse { request_id, server })
    }

    /// ModifySslVpnServer with `DryRun=true`: the cloud runs its checks and
    /// changes nothing. `Ok` is the RequestId of its `DryRunOperation`, the
    /// answer of a dry run whose checks passed; a refusal is the error a
    /// real modify would get.
    pub async fn dry_run_modify_ssl_vpn_server(
        &self,
        req: &ModifyRequest<'_>,
        deadline: Option<Instant>,
    ) -> Result<String, CloudError> {
        let mut params = modify_params(req);
        params.push(("DryRun".to_owned(), "true".to_owned()));
        match self
            .call::<wire::RequestIdOnly>("ModifySslVpnServer", req.region, params, deadline)
            .await
        {
            Err(err) if err.code() == DRY_RUN_OPERATION => {
                Ok(err.request_id().unwrap_or_default().to_owned())
            }
            Err(err) => Err(err),
            // A success would mean the cloud ignored DryRun and applied the
            // change: never report that as "nothing changed".
            Ok(body) => Err(CloudError::invalid_response(
                "ModifySslVpnServer answered a dry run with success instead of DryRunOperation; \
                 the change may have been applied",
                Some(body.request_id),
            )),
        }
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
                crate::error::Kind::NotFound,
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
}

/// ModifySslVpnServer's parameters: the server, the token, the changes.
fn modify_params(req: &ModifyRequest<'_>) -> Vec<(String, String)> {
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
    params
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
