//! The authorization policy: which caller may call which RPC on which
//! region, SSL server and VPN gateway.
//!
//! The gateway's own cloud credentials can change every SSL-VPN server of
//! the account; the policy is what narrows that power per caller. Once a
//! policy is configured everything not granted by one rule is refused (deny
//! by default), and a single rule must grant all of identity, RPC, region,
//! server and gateway at once: grants never combine across rules.
//!
//! The file is JSON (serde_json is already a dependency; a TOML parser would
//! be a new one for a file of a dozen lines):
//!
//! ```json
//! {
//!   "rules": [
//!     { "identities": ["spiffe://corp.example/ns/netops/sa/deployer"],
//!       "rpcs": ["*"],
//!       "regions": ["cn-hangzhou"],
//!       "gateways": ["vpn-hz1*"] },
//!     { "identities": ["dashboard"],
//!       "rpcs": ["GetSslVpnServerStatus", "WatchSslVpnServer"] }
//!   ]
//! }
//! ```
//!
//! `identities` and `rpcs` are required; `regions`, `servers` and `gateways`
//! default to `["*"]`. Patterns are globs where `*` matches any run of
//! characters (`vpn-hz1*`, `*`); everything else matches itself. Unknown
//! keys are refused, so a misspelt `"gateway"` cannot silently widen a rule.

use std::{fmt, path::Path};

use serde::Deserialize;

pub use crate::service::gate::Rpc;

/// A glob: `*` matches any run of characters, anything else itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern(String);

impl Pattern {
    pub fn new(p: &str) -> Result<Self, String> {
        if p.is_empty() {
            return Err("an empty pattern matches nothing; use \"*\" for anything".into());
        }
        if p.chars().any(char::is_control) {
            return Err("patterns may not hold control characters".into());
        }
        Ok(Pattern(p.to_owned()))
    }

    /// Whether `text` matches. Linear in practice: the classic greedy
    /// matcher that backtracks only to the last `*`, so no pattern can make
    /// a request slow.
    pub fn matches(&self, text: &str) -> bool {
        glob_match(self.0.as_bytes(), text.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

fn glob_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // Where the last `*` was, and the text position it is currently
    // assumed to have swallowed up to.
    let mut star: Option<(usize, usize)> = None;
    while t < text.len() {
        if p < pattern.len() && pattern[p] == b'*' {
            star = Some((p, t));
            p += 1;
        } else if p < pattern.len() && pattern[p] == text[t] {
            p += 1;
            t += 1;
        } else if let Some((sp, st)) = star {
            // Let the last star swallow one more byte and retry.
            p = sp + 1;
            t = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|&b| b == b'*')
}

/// One grant.
#[derive(Clone, Debug)]
pub struct Rule {
    identities: Vec<Pattern>,
    rpcs: Vec<Rpc>,
    regions: Vec<Pattern>,
    servers: Vec<Pattern>,
    gateways: Vec<Pattern>,
}

fn any(patterns: &[Pattern], text: &str) -> bool {
    patterns.iter().any(|p| p.matches(text))
}

impl Rule {
    fn grants(&self, req: &Request<'_>) -> bool {
        any(&self.identities, req.identity)
            && self.rpcs.contains(&req.rpc)
            && any(&self.regions, req.region)
            && any(&self.servers, req.server)
            && match req.gateway {
                Some(g) => any(&self.gateways, g),
                // Not known yet: the rule may still grant once it is.
                None => true,
            }
    }
}

/// What a caller wants to do.
#[derive(Clone, Copy, Debug)]
pub struct Request<'a> {
    pub identity: &'a str,
    pub rpc: Rpc,
    pub region: &'a str,
    pub server: &'a str,
    /// `None` before the server's gateway is known: then the question is
    /// whether some gateway could be granted, so a request no rule can
    /// grant is refused before any cloud call.
    pub gateway: Option<&'a str>,
}

/// A parsed policy file.
#[derive(Clone, Debug)]
pub struct Policy {
    rules: Vec<Rule>,
}

/// Why a policy file was refused.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("cannot read the policy file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the policy file {path} is not valid: {why}")]
    Invalid { path: String, why: String },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    rules: Vec<RuleDoc>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RuleDoc {
    identities: Vec<String>,
    rpcs: Vec<String>,
    #[serde(default = "anything")]
    regions: Vec<String>,
    #[serde(default = "anything")]
    servers: Vec<String>,
    #[serde(default = "anything")]
    gateways: Vec<String>,
}

fn anything() -> Vec<String> {
    vec!["*".to_owned()]
}

impl Policy {
    /// Reads and checks a policy file.
    pub fn load(path: &Path) -> Result<Self, PolicyError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|why| PolicyError::Invalid { path: shown, why })
    }

    /// Parses a policy document; the error says which rule and why.
    pub fn parse(text: &str) -> Result<Self, String> {
        let doc: PolicyDoc = serde_json::from_str(text).map_err(|e| e.to_string())?;
        let rules = doc
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rule::from_doc(r).map_err(|why| format!("rule {}: {why}", i + 1)))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Policy { rules })
    }

    /// Whether one rule grants all of `access`.
    pub fn allows(&self, access: &Request<'_>) -> bool {
        self.rules.iter().any(|r| r.grants(access))
    }

    pub fn rules(&self) -> usize {
        self.rules.len()
    }
}

impl Rule {
    fn from_doc(doc: RuleDoc) -> Result<Self, String> {
        let patterns = |what: &str, list: Vec<String>| -> Result<Vec<Pattern>, String> {
            if list.is_empty() {
                return Err(format!("{what} is empty, so the rule grants nothing"));
            }
            list.iter()
                .map(|p| Pattern::new(p).map_err(|why| format!("{what}: {why}")))
                .collect()
        };
        if doc.rpcs.is_empty() {
            return Err("rpcs is empty, so the rule grants nothing".into());
        }
        let mut rpcs = Vec::new();
        for name in &doc.rpcs {
            if name == "*" {
                rpcs.extend(Rpc::ALL);
            } else {
                let rpc = Rpc::ALL
                    .into_iter()
                    .find(|r| r.as_str() == name)
                    .ok_or_else(|| {
                        format!(
                            "rpcs: {name:?} is not one of ModifySslVpnServer, \
                             GetSslVpnServerStatus, WatchSslVpnServer or \"*\""
                        )
                    })?;
                rpcs.push(rpc);
            }
        }
        Ok(Rule {
            identities: patterns("identities", doc.identities)?,
            rpcs,
            regions: patterns("regions", doc.regions)?,
            servers: patterns("servers", doc.servers)?,
            gateways: patterns("gateways", doc.gateways)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access<'a>(identity: &'a str, rpc: Rpc, gateway: Option<&'a str>) -> Request<'a> {
        Request {
            identity,
            rpc,
            region: "cn-hangzhou",
            server: "vss-hz1primary",
            gateway,
        }
    }

    #[test]
    fn globs() {
        let m = |p: &str, t: &str| Pattern::new(p).unwrap().matches(t);
        assert!(m("*", ""));
        assert!(m("*", "anything"));
        assert!(m("vpn-hz1*", "vpn-hz1primary"));
        assert!(m("vpn-hz1*", "vpn-hz1"));
        assert!(!m("vpn-hz1*", "vpn-hz2primary"));
        assert!(m("*primary", "vpn-hz1primary"));
        assert!(m("vpn-*-x*y", "vpn-a-xxy"));
        assert!(!m("vpn-*-x*y", "vpn-a-xyz"));
        assert!(m("a**b", "ab"));
        assert!(!m("abc", "abcd"));
        assert!(!m("abcd", "abc"));
        // `?` and `[` are literal: only `*` is special.
        assert!(m("a?", "a?"));
        assert!(!m("a?", "ab"));
        assert!(Pattern::new("").is_err());
        assert!(Pattern::new("a\nb").is_err());
    }

    #[test]
    fn deny_by_default_and_one_rule_must_grant_everything() {
        let policy = Policy::parse(
            r#"{"rules":[
                {"identities":["alice"],"rpcs":["*"],"gateways":["vpn-hz1*"]},
                {"identities":["bob"],"rpcs":["GetSslVpnServerStatus"],"regions":["cn-shanghai"]}
            ]}"#,
        )
        .unwrap();
        let modify = Rpc::ModifySslVpnServer;
        assert!(policy.allows(&access("alice", modify, Some("vpn-hz1primary"))));
        assert!(policy.allows(&access("alice", modify, None)));
        assert!(!policy.allows(&access("alice", modify, Some("vpn-hz2locked"))));
        // bob's region and alice's gateway do not add up to a grant.
        assert!(!policy.allows(&access("bob", Rpc::GetSslVpnServerStatus, None)));
        assert!(!policy.allows(&access("carol", modify, None)));
        assert!(!Policy::parse(r#"{"rules":[]}"#).unwrap().allows(&access(
            "alice",
            modify,
            Some("vpn-hz1primary")
        )));
    }

    #[test]
    fn refuses_files_that_could_mean_something_else() {
        for (doc, why) in [
            (
                r#"{"rules":[{"identities":["a"],"rpcs":["*"],"gateway":["x"]}]}"#,
                "unknown field",
            ),
            (
                r#"{"rules":[{"identities":["a"],"rpcs":["Modify"]}]}"#,
                "is not one of",
            ),
            (
                r#"{"rules":[{"identities":[],"rpcs":["*"]}]}"#,
                "identities is empty",
            ),
            (
                r#"{"rules":[{"identities":["a"],"rpcs":[]}]}"#,
                "rpcs is empty",
            ),
            (
                r#"{"rules":[{"identities":["a"],"rpcs":["*"],"servers":[""]}]}"#,
                "empty pattern",
            ),
            (r#"{"rules":[{"rpcs":["*"]}]}"#, "missing field"),
            (r#"{"rule":[]}"#, "unknown field"),
        ] {
            let err = Policy::parse(doc).unwrap_err();
            assert!(err.contains(why), "{doc}: {err}");
        }
    }

    #[test]
    fn rpc_from_path() {
        assert_eq!(
            Rpc::from_path("/sslvpn.v1.SslVpnService/WatchSslVpnServer"),
            Some(Rpc::WatchSslVpnServer)
        );
        assert_eq!(Rpc::from_path("/sslvpn.v1.SslVpnService/Other"), None);
    }
}
