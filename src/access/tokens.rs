//! Bearer tokens: a file of `identity sha256:<hex>` lines, checked in
//! constant time.
//!
//! The file holds hashes, not tokens, so reading it (a backup, a config
//! dump) does not hand out access; a token is hashed with SHA-256 when it
//! arrives and its hash compared with every entry using `subtle`, touching
//! every entry whatever matches, so timing reveals neither which entry
//! matched nor how much of a hash did. Tokens must be long random strings
//! (`openssl rand -hex 32`): an unsalted hash protects those, not passwords.
//!
//! ```text
//! # identity                 token hash (printf %s "$TOKEN" | sha256sum)
//! ci-deployer                sha256:<64 hex digits: the SHA-256 of ci-deployer's token>
//! dashboard                  sha256:<64 hex digits: the SHA-256 of dashboard's token>
//! ```

use std::{fmt, path::Path, sync::Arc};

use sha2::{Digest, Sha256};
use subtle::{ConditionallySelectable, ConstantTimeEq};

/// Longest token accepted: far above any sane one, and it bounds hashing.
const MAX_TOKEN_LEN: usize = 4096;

/// Identities: printable, no spaces, so a line splits unambiguously and a
/// name prints safely in logs.
const MAX_IDENTITY_LEN: usize = 256;

/// The parsed tokens file.
pub struct TokenStore {
    entries: Vec<(Arc<str>, [u8; 32])>,
}

/// Why a tokens file was refused. Never quotes a line: a token pasted by
/// mistake in place of its hash must not reach a log.
#[derive(Debug, thiserror::Error)]
pub enum TokenFileError {
    #[error("cannot read the tokens file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("the tokens file {path}, line {line}: {why}")]
    Invalid {
        path: String,
        line: usize,
        why: &'static str,
    },
}

/// SHA-256 of a token, as stored in the file.
pub fn hash(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

/// The token of an `authorization` header value: `Bearer <token>` (scheme
/// case-insensitive), visible ASCII only.
pub fn bearer(value: &[u8]) -> Option<&str> {
    let value = std::str::from_utf8(value).ok()?.trim();
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim_start();
    (scheme.eq_ignore_ascii_case("bearer")
        && !token.is_empty()
        && token.len() <= MAX_TOKEN_LEN
        && token.bytes().all(|b| b.is_ascii_graphic()))
    .then_some(token)
}

impl TokenStore {
    pub fn load(path: &Path) -> Result<Self, TokenFileError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| TokenFileError::Read {
            path: shown.clone(),
            source,
        })?;
        Self::parse(&text).map_err(|(line, why)| TokenFileError::Invalid {
            path: shown,
            line,
            why,
        })
    }

    /// Parses the file's text; errors carry the line number and a reason.
    pub fn parse(text: &str) -> Result<Self, (usize, &'static str)> {
        let mut entries: Vec<(Arc<str>, [u8; 32])> = Vec::new();
        for (i, line) in text.lines().enumerate() {
            let n = i + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let mut fields = line.split_whitespace();
            let (Some(identity), Some(digest), None) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err((n, "expected `identity sha256:<64 hex digits>`"));
            };
            if identity.len() > MAX_IDENTITY_LEN
                || !identity.bytes().all(|b| b.is_ascii_graphic())
                || identity.contains('*')
            {
                return Err((
                    n,
                    "the identity must be printable ASCII without `*`, at most 256 characters",
                ));
            }
            let hex_digits = digest
                .strip_prefix("sha256:")
                .ok_or((n, "the hash must start with `sha256:`"))?;
            let mut hash = [0u8; 32];
            hex::decode_to_slice(hex_digits, &mut hash)
                .map_err(|_| (n, "the hash must be 64 hex digits after `sha256:`"))?;
            if entries.iter().any(|(_, h)| *h == hash) {
                return Err((n, "the same token hash appears twice"));
            }
            entries.push((Arc::from(identity), hash));
        }
        Ok(Self { entries })
    }

    /// The identity a token belongs to.
    pub fn verify(&self, token: &str) -> Option<Arc<str>> {
        self.verify_hash(&hash(token))
    }

    /// The identity a token hash belongs to (the token is no longer at
    /// hand when a reload checks the calls it authenticated).
    pub fn verify_hash(&self, presented: &[u8; 32]) -> Option<Arc<str>> {
        // Scan every entry, remembering the match without branching on it.
        let mut found = subtle::Choice::from(0);
        let mut index = 0u32;
        for (i, (_, stored)) in self.entries.iter().enumerate() {
            let hit = stored.ct_eq(presented);
            index.conditional_assign(&(i as u32), hit);
            found |= hit;
        }
        bool::from(found)
            .then(|| {
                self.entries
                    .get(index as usize)
                    .map(|(name, _)| name.clone())
            })
            .flatten()
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl fmt::Debug for TokenStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TokenStore")
            .field("identities", &self.entries.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(identity: &str, token: &str) -> String {
        format!("{identity} sha256:{}\n", hex::encode(hash(token)))
    }

    #[test]
    fn verifies_tokens_by_hash() {
        let text = format!(
            "# comment\n\n{}  {}",
            line("alice", "alice-token-0123456789"),
            line("bob", "bob-token-0123456789")
        );
        let store = TokenStore::parse(&text).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(
            store.verify("alice-token-0123456789").as_deref(),
            Some("alice")
        );
        assert_eq!(store.verify("bob-token-0123456789").as_deref(), Some("bob"));
        assert_eq!(store.verify("alice-token-012345678"), None);
        assert_eq!(store.verify(""), None);
    }

    #[test]
    fn refuses_bad_lines_without_quoting_them() {
        let secret = "plain-token-pasted-by-mistake";
        for (text, line_no) in [
            (format!("alice {secret}\n"), 1),
            (format!("# ok\nalice sha256:{secret}\n"), 2),
            ("alice\n".to_owned(), 1),
            (format!("al*ce sha256:{}\n", "0".repeat(64)), 1),
            (format!("a sha256:{0}\nb sha256:{0}\n", "0".repeat(64)), 2),
            (format!("a sha256:{} extra\n", "0".repeat(64)), 1),
        ] {
            let (line, why) = TokenStore::parse(&text).unwrap_err();
            assert_eq!(line, line_no, "{text}");
            assert!(!why.contains(secret));
        }
    }

    #[test]
    fn bearer_header() {
        assert_eq!(bearer(b"Bearer abc"), Some("abc"));
        assert_eq!(bearer(b"bearer  abc "), Some("abc"));
        assert_eq!(bearer(b"Basic abc"), None);
        assert_eq!(bearer(b"Bearer"), None);
        assert_eq!(bearer(b"Bearer "), None);
        assert_eq!(bearer(b"Bearer a b"), None);
        assert_eq!(bearer(b"Bearer \xff"), None);
    }

    #[test]
    fn debug_shows_no_hashes() {
        let store = TokenStore::parse(&line("alice", "t0ken-value-123456")).unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains(&hex::encode(hash("t0ken-value-123456"))));
        assert!(!shown.contains("alice"), "{shown}");
    }
}
