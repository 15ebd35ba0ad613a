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
//!   "version": 2,
//!   "rules": [
//!     { "identities": ["spiffe://corp.example/ns/netops/sa/*"],
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
//! default to `["*"]`. Patterns are globs that respect path segments: `*`
//! matches any run of characters within one segment (never a `/`), `**` any
//! run at all, across segments (`spiffe://corp.example/ns/netops/*` is
//! `netops/x`, not `netops/sa/deployer`; `.../netops/**` is both); everything
//! else matches itself. Unknown keys are refused, so a misspelt `"gateway"`
//! cannot silently widen a rule.
//!
//! Until this change a single `*` crossed `/` too. A policy written for that
//! meaning would now grant less without a word, so a policy without
//! `"version": 2` is refused at load if an identity pattern holds a single
//! `*`, with a message saying what changed and what to write instead (`**`
//! for the old meaning; `"version": 2` to mean one segment). Regions, servers
//! and gateways never hold a `/`, so their patterns mean what they meant.

use std::{fmt, path::Path};

use serde::Deserialize;

pub use crate::service::gate::Rpc;

/// The policy format whose glob meaning this code implements.
pub const POLICY_VERSION: u64 = 2;

/// A glob: `*` matches any run of characters but `/`, `**` (two or more
/// stars) any run at all, anything else itself.
#[derive(Clone, PartialEq, Eq)]
pub struct Pattern {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Token {
    Byte(u8),
    /// `*`: within one path segment.
    Star,
    /// `**`: across segments.
    Stars,
}

impl Pattern {
    pub fn new(p: &str) -> Result<Self, String> {
        if p.is_empty() {
            return Err("an empty pattern matches nothing; use \"**\" for anything".into());
        }
        if p.chars().any(char::is_control) {
            return Err("patterns may not hold control characters".into());
        }
        let mut tokens = Vec::with_capacity(p.len());
        let bytes = p.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i] == b'*' {
                let run = bytes[i..].iter().take_while(|&&b| b == b'*').count();
                tokens.push(if run == 1 { Token::Star } else { Token::Stars });
                i += run;
            } else {
                tokens.push(Token::Byte(bytes[i]));
                i += 1;
            }
        }
        Ok(Pattern {
            text: p.to_owned(),
            tokens,
        })
    }

    /// Whether `text` matches. Reads the text once, keeping the set of
    /// pattern positions reached so far (no backtracking), so no pattern
    /// can make a request slow: at most text × pattern steps.
    pub fn matches(&self, text: &str) -> bool {
        glob_match(&self.tokens, text.as_bytes())
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Whether a single `*` appears: the one thing whose meaning changed
    /// with [`POLICY_VERSION`] 2.
    fn has_single_star(&self) -> bool {
        self.tokens.contains(&Token::Star)
    }

    /// The pattern with every single `*` doubled: what it matched before
    /// `*` stopped at `/`.
    fn crossing(&self) -> String {
        let mut out = String::with_capacity(self.text.len() + 2);
        let mut stars = 0;
        for c in self.text.chars() {
            if c == '*' {
                stars += 1;
                continue;
            }
            if stars > 0 {
                out.push_str("**");
                stars = 0;
            }
            out.push(c);
        }
        if stars > 0 {
            out.push_str("**");
        }
        out
    }
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.text, f)
    }
}

fn glob_match(tokens: &[Token], text: &[u8]) -> bool {
    // reached[i]: the first i tokens match the text read so far.
    let mut reached = vec![false; tokens.len() + 1];
    let mut next = reached.clone();
    reached[0] = true;
    // A star may match nothing: reaching it reaches what follows it too.
    let close = |set: &mut [bool]| {
        for i in 0..tokens.len() {
            if set[i] && matches!(tokens[i], Token::Star | Token::Stars) {
                set[i + 1] = true;
            }
        }
    };
    close(&mut reached);
    for &c in text {
        next.iter_mut().for_each(|n| *n = false);
        let mut any = false;
        for (i, token) in tokens.iter().enumerate() {
            if !reached[i] {
                continue;
            }
            let to = match *token {
                Token::Byte(b) if b == c => i + 1,
                Token::Star if c != b'/' => i,
                Token::Stars => i,
                _ => continue,
            };
            next[to] = true;
            any = true;
        }
        if !any {
            return false;
        }
        close(&mut next);
        std::mem::swap(&mut reached, &mut next);
    }
    reached[tokens.len()]
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
    /// 2: `*` stops at `/`. Absent: written before that, checked for
    /// patterns whose meaning changed.
    #[serde(default)]
    version: Option<u64>,
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
        let legacy = match doc.version {
            None => true,
            Some(POLICY_VERSION) => false,
            Some(other) => {
                return Err(format!(
                    "version {other} is not known; this gateway reads version {POLICY_VERSION}"
                ));
            }
        };
        let rules = doc
            .rules
            .into_iter()
            .enumerate()
            .map(|(i, r)| Rule::from_doc(r, legacy).map_err(|why| format!("rule {}: {why}", i + 1)))
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
    fn from_doc(doc: RuleDoc, legacy: bool) -> Result<Self, String> {
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
        let identities = patterns("identities", doc.identities)?;
        if legacy && let Some(changed) = identities.iter().find(|p| p.has_single_star()) {
            return Err(changed_meaning(changed));
        }
        Ok(Rule {
            identities,
            rpcs,
            regions: patterns("regions", doc.regions)?,
            servers: patterns("servers", doc.servers)?,
            gateways: patterns("gateways", doc.gateways)?,
        })
    }
}

/// Why a pattern of a policy without a version is refused: its `*` meant
/// more when the policy was written.
fn changed_meaning(p: &Pattern) -> String {
    format!(
        "identities: {:?}: a single \"*\" no longer matches across \"/\" (it now stops at \
         a path segment, and \"**\" crosses segments), so this rule would grant less than \
         when it was written; write {:?} to keep what it granted, or add \"version\": \
         {POLICY_VERSION} to the policy if one segment is meant",
        p.as_str(),
        p.crossing()
    )
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
    fn a_single_star_stops_at_a_slash_and_two_cross_it() {
        let m = |p: &str, t: &str| Pattern::new(p).unwrap().matches(t);
        let netops = "spiffe://corp/ns/netops";
        assert!(m("spiffe://corp/ns/netops/*", &format!("{netops}/x")));
        assert!(!m("spiffe://corp/ns/netops/*", &format!("{netops}/x/y/z")));
        assert!(!m(
            "spiffe://corp/ns/netops/*",
            &format!("{netops}/sa/deployer")
        ));
        assert!(m("spiffe://corp/ns/netops/**", &format!("{netops}/x/y/z")));
        assert!(m("spiffe://corp/ns/netops/**", &format!("{netops}/x")));
        // `**` also matches nothing, so `netops/**` does not match `netops`
        // itself (the `/` is literal), but `netops**` does.
        assert!(!m("spiffe://corp/ns/netops/**", netops));
        assert!(m("spiffe://corp/ns/netops**", netops));
        assert!(m(
            "spiffe://corp/ns/*/sa/deployer",
            &format!("{netops}/sa/deployer")
        ));
        assert!(!m(
            "spiffe://corp/ns/*/sa/deployer",
            "spiffe://corp/ns/a/b/sa/deployer"
        ));
        assert!(m(
            "spiffe://corp/**/deployer",
            "spiffe://corp/ns/a/b/sa/deployer"
        ));
        // A star never swallows a `/`, even to reach a later literal.
        assert!(!m("*", "a/b"));
        assert!(m("**", "a/b"));
        assert!(m("a*/b", "ax/b"));
        assert!(!m("a*b", "a/b"));
        // Three stars or more are two.
        assert!(m("a***c", "a/b/c"));
        // Multi-byte text: a star takes whole characters (any byte but `/`).
        assert!(m("ü*ö", "üßö"));
        assert!(!m("ü*ö", "ü/ö"));
    }

    #[test]
    fn a_policy_relying_on_the_old_star_is_refused_with_what_changed() {
        let old = r#"{"rules":[{"identities":["spiffe://corp/ns/netops/*"],"rpcs":["*"]}]}"#;
        let err = Policy::parse(old).unwrap_err();
        assert!(err.contains("rule 1"), "{err}");
        assert!(err.contains("no longer matches across \"/\""), "{err}");
        assert!(err.contains(r#""spiffe://corp/ns/netops/**""#), "{err}");
        assert!(err.contains(r#""version": 2"#), "{err}");
        // Everyone: `*` alone would now leave out every SPIFFE id.
        let err = Policy::parse(r#"{"rules":[{"identities":["*"],"rpcs":["*"]}]}"#).unwrap_err();
        assert!(err.contains(r#"write "**""#), "{err}");
        // Without a single star nothing changed: accepted as it was.
        let unchanged = Policy::parse(
            r#"{"rules":[{"identities":["dashboard","spiffe://corp/ns/netops/**"],
                "rpcs":["*"],"gateways":["vpn-hz1*"]}]}"#,
        )
        .unwrap();
        let request = |identity| Request {
            identity,
            rpc: Rpc::WatchSslVpnServer,
            region: "cn-hangzhou",
            server: "vss-a",
            gateway: Some("vpn-hz1a"),
        };
        assert!(unchanged.allows(&request("spiffe://corp/ns/netops/sa/deployer")));
        assert!(unchanged.allows(&request("dashboard")));
        // Version 2 says one segment is meant.
        let v2 = Policy::parse(
            r#"{"version":2,"rules":[{"identities":["spiffe://corp/ns/netops/*"],"rpcs":["*"]}]}"#,
        )
        .unwrap();
        assert!(v2.allows(&request("spiffe://corp/ns/netops/ci")));
        assert!(!v2.allows(&request("spiffe://corp/ns/netops/sa/deployer")));
        let err = Policy::parse(r#"{"version":3,"rules":[]}"#).unwrap_err();
        assert!(err.contains("version 3"), "{err}");
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
