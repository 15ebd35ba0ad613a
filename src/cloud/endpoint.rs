//! Which URL a region's requests go to.
//!
//! By default `https://vpc.<region>.aliyuncs.com`, except the regions the
//! official SDK sends to the central `vpc.aliyuncs.com`. An operator can
//! send every region to one URL (an emulator, a proxy) or override single
//! regions. Only overrides may use plain `http`. The region id becomes part
//! of a host name, so it is validated again here, whatever its origin.

use std::collections::HashMap;

use reqwest::Url;

use super::error::CloudError;
use crate::{domain::RegionId, validate};

/// The central endpoint.
pub const CENTRAL_HOST: &str = "vpc.aliyuncs.com";

/// Regions the official SDK (alibabacloud-vpc20160428 7.2.2) maps to the
/// central endpoint instead of `vpc.<region>.aliyuncs.com`.
const CENTRAL_REGIONS: &[&str] = &[
    "cn-hangzhou",
    "cn-shanghai-finance-1",
    "cn-shenzhen-finance-1",
    "cn-north-2-gov-1",
    "ap-northeast-2-pop",
    "cn-beijing-finance-pop",
    "cn-beijing-gov-1",
    "cn-beijing-nu16-b01",
    "cn-fujian",
    "cn-haidian-cm12-c01",
    "cn-hangzhou-bj-b01",
    "cn-hangzhou-finance",
    "cn-hangzhou-internal-prod-1",
    "cn-hongkong-finance-pop",
    "cn-shanghai-et2-b01",
    "cn-shanghai-inner",
    "cn-shenzhen-inner",
    "cn-shenzhen-st4-d01",
    "cn-shenzhen-su18-b01",
    "cn-wuhan",
    "cn-yushanfang",
    "cn-zhangbei",
    "cn-zhangbei-na61-b01",
    "rus-west-1-pop",
];

/// Regions the official SDK maps to a host of another region (the two the
/// wire reference names; both are test or edge regions).
const OTHER_HOSTS: &[(&str, &str)] = &[
    ("cn-edge-1", "vpc-nebula.cn-qingdao-nebula.aliyuncs.com"),
    ("cn-zhangjiakou-na62-a01", "vpc.cn-zhangjiakou.aliyuncs.com"),
];

/// Where one request goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Endpoint {
    /// `https` or `http`.
    pub scheme: String,
    /// The host alone (`server.address`).
    pub address: String,
    /// The port, explicit or the scheme's default (`server.port`).
    pub port: u16,
    /// `host` or `host:port` when the port is not the default: the Host
    /// header, and what the V3 signature covers.
    pub authority: String,
    /// `scheme://authority` with no path: where `/` and the query go.
    pub base_url: String,
}

impl Endpoint {
    /// The URL without the query, for logs and spans.
    pub fn redacted_url(&self) -> String {
        format!("{}/", self.base_url)
    }

    fn from_url(url: &Url) -> Result<Self, String> {
        let scheme = url.scheme();
        if scheme != "https" && scheme != "http" {
            return Err(format!("scheme {scheme:?} is not http or https"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err("credentials in the URL are not allowed".to_owned());
        }
        if url.query().is_some() || url.fragment().is_some() {
            return Err("a query or fragment is not allowed".to_owned());
        }
        if !(url.path().is_empty() || url.path() == "/") {
            return Err("a path is not allowed: the API lives at /".to_owned());
        }
        let address = url
            .host_str()
            .filter(|h| !h.is_empty())
            .ok_or("the URL has no host")?
            .to_owned();
        let port = url.port_or_known_default().ok_or("the URL has no port")?;
        let authority = match url.port() {
            Some(p) => format!("{address}:{p}"),
            None => address.clone(),
        };
        Ok(Self {
            scheme: scheme.to_owned(),
            base_url: format!("{scheme}://{authority}"),
            address,
            port,
            authority,
        })
    }

    /// Parses an override: `http(s)://host[:port]` or a bare `host[:port]`
    /// (HTTPS).
    pub fn parse_override(s: &str) -> Result<Self, CloudError> {
        let trimmed = s.trim();
        let with_scheme = if trimmed.contains("://") {
            trimmed.to_owned()
        } else {
            format!("https://{trimmed}")
        };
        Url::parse(&with_scheme)
            .map_err(|e| e.to_string())
            .and_then(|url| Self::from_url(&url))
            .map_err(|why| {
                let shown = without_userinfo(trimmed);
                CloudError::config(format!("endpoint {shown:?} is not usable: {why}"))
            })
    }

    fn https(host: String) -> Self {
        Self {
            scheme: "https".to_owned(),
            base_url: format!("https://{host}"),
            address: host.clone(),
            port: 443,
            authority: host,
        }
    }
}

/// `s` with any `user:password@` of its authority masked: a refused
/// endpoint is named in the error, its credentials never.
fn without_userinfo(s: &str) -> String {
    let (scheme, rest) = s.split_once("://").unwrap_or(("", s));
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host = match authority.rfind('@') {
        Some(at) => format!("***@{}", &authority[at + 1..]),
        None => authority.to_owned(),
    };
    let scheme = if scheme.is_empty() {
        String::new()
    } else {
        format!("{scheme}://")
    };
    format!("{scheme}{host}{tail}")
}

/// The official host of a region.
pub fn default_host(region: &RegionId) -> String {
    let id = region.as_str();
    if CENTRAL_REGIONS.contains(&id) {
        CENTRAL_HOST.to_owned()
    } else if let Some((_, host)) = OTHER_HOSTS.iter().find(|(r, _)| *r == id) {
        (*host).to_owned()
    } else {
        format!("vpc.{}.aliyuncs.com", region.as_str())
    }
}

/// Resolves regions to endpoints: a per-region override, else the global
/// one, else the official host.
#[derive(Clone, Debug, Default)]
pub struct Endpoints {
    global: Option<Endpoint>,
    per_region: HashMap<String, Endpoint>,
}

impl Endpoints {
    /// Checks every override up front, so a typo fails at startup.
    pub fn new(
        global: Option<&str>,
        per_region: &HashMap<String, String>,
    ) -> Result<Self, CloudError> {
        let global = global
            .filter(|g| !g.trim().is_empty())
            .map(Endpoint::parse_override)
            .transpose()?;
        let mut map = HashMap::new();
        for (region, url) in per_region {
            let region = validate::region_id(region).map_err(|v| {
                CloudError::config(format!(
                    "endpoint override for {region:?}: {}",
                    v.description
                ))
            })?;
            map.insert(region.as_str().to_owned(), Endpoint::parse_override(url)?);
        }
        Ok(Self {
            global,
            per_region: map,
        })
    }

    pub fn resolve(&self, region: &RegionId) -> Result<Endpoint, CloudError> {
        // RegionId can also be deserialized; check again before it becomes
        // part of a host name.
        let region = validate::region_id(region.as_str()).map_err(|v| {
            CloudError::new(
                crate::error::Kind::InvalidArgument,
                "InvalidRegionId",
                v.description,
            )
        })?;
        if let Some(e) = self.per_region.get(region.as_str()) {
            return Ok(e.clone());
        }
        if let Some(e) = &self.global {
            return Ok(e.clone());
        }
        Ok(Endpoint::https(default_host(&region)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn region(s: &str) -> RegionId {
        validate::region_id(s).unwrap()
    }

    #[test]
    fn official_hosts_follow_the_sdk_map() {
        let e = Endpoints::default();
        let host = |r: &str| e.resolve(&region(r)).unwrap().base_url;
        assert_eq!(host("cn-hangzhou"), "https://vpc.aliyuncs.com");
        assert_eq!(host("cn-shanghai-finance-1"), "https://vpc.aliyuncs.com");
        assert_eq!(host("cn-shanghai"), "https://vpc.cn-shanghai.aliyuncs.com");
        assert_eq!(
            host("ap-southeast-1"),
            "https://vpc.ap-southeast-1.aliyuncs.com"
        );
        assert_eq!(
            host("eu-central-1"),
            "https://vpc.eu-central-1.aliyuncs.com"
        );
        assert_eq!(
            host("cn-edge-1"),
            "https://vpc-nebula.cn-qingdao-nebula.aliyuncs.com"
        );
        assert_eq!(
            host("cn-zhangjiakou-na62-a01"),
            "https://vpc.cn-zhangjiakou.aliyuncs.com"
        );
    }

    #[test]
    fn overrides_win_most_specific_first() {
        let per = HashMap::from([(
            "cn-beijing".to_owned(),
            "https://proxy.example:8443".to_owned(),
        )]);
        let e = Endpoints::new(Some("http://127.0.0.1:18080"), &per).unwrap();
        let beijing = e.resolve(&region("cn-beijing")).unwrap();
        assert_eq!(beijing.authority, "proxy.example:8443");
        assert_eq!(
            (beijing.address.as_str(), beijing.port),
            ("proxy.example", 8443)
        );
        let other = e.resolve(&region("me-east-1")).unwrap();
        assert_eq!(other.base_url, "http://127.0.0.1:18080");
        assert_eq!(other.redacted_url(), "http://127.0.0.1:18080/");
        assert_eq!(other.port, 18080);
    }

    #[test]
    fn bare_hosts_are_https_and_default_ports_are_dropped() {
        let e = Endpoint::parse_override("vpc-vpc.cn-shanghai.aliyuncs.com").unwrap();
        assert_eq!(e.base_url, "https://vpc-vpc.cn-shanghai.aliyuncs.com");
        assert_eq!(e.port, 443);
        let e = Endpoint::parse_override("https://h.example:443/").unwrap();
        assert_eq!(e.authority, "h.example");
    }

    #[test]
    fn bad_overrides_fail_early() {
        for bad in [
            "ftp://x",
            "http://u:p@x",
            "http://x/path",
            "http://x/?a=b",
            "http://",
        ] {
            let err = Endpoint::parse_override(bad).unwrap_err();
            assert_eq!(err.kind(), crate::error::Kind::InvalidArgument, "{bad}");
        }
        let err = Endpoint::parse_override("https://svc:hunter2@proxy.internal:8443/").unwrap_err();
        assert!(!err.message().contains("hunter2"), "{}", err.message());
        assert!(!err.message().contains("svc:"), "{}", err.message());
        assert!(
            err.message().contains("https://***@proxy.internal:8443/"),
            "{}",
            err.message()
        );
        let per = HashMap::from([("Not A Region".to_owned(), "http://x".to_owned())]);
        assert!(Endpoints::new(None, &per).is_err());
    }

    #[test]
    fn deserialized_region_ids_are_checked_again() {
        let sneaky: RegionId = serde_json::from_str("\"evil.com/x\"").unwrap();
        let err = Endpoints::default().resolve(&sneaky).unwrap_err();
        assert_eq!(err.code(), "InvalidRegionId");
    }
}
