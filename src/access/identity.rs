//! Who is calling: the caller's identity, proven by an mTLS client
//! certificate or a bearer token, established once per call in the
//! transport layer and handed to the handlers as a typed [`Identity`] in the
//! request's extensions.
//!
//! Authentication sits in front of `sslvpn.v1.SslVpnService` only: health
//! (probes, load balancers) and reflection (the public contract) stay open.
//! Authorization needs the resource, so it happens in the handlers against
//! the [`crate::access::policy`].

use std::{fmt, sync::Arc};

use http::HeaderMap;
use tokio_rustls::rustls::pki_types::CertificateDer;

use super::{
    cert,
    tokens::{self, TokenStore},
};

/// How a caller proved who it is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Proof {
    /// Authentication is not configured (loopback development only).
    None,
    /// A bearer token from the tokens file.
    Token,
    /// A client certificate the configured CA signed.
    Certificate,
}

/// The caller of one RPC. The name is what the policy matches and what
/// spans and the audit log show; it is never a secret.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    name: Arc<str>,
    proof: Proof,
}

impl Identity {
    /// The caller when authentication is off.
    pub fn anonymous() -> Self {
        Self {
            name: Arc::from("anonymous"),
            proof: Proof::None,
        }
    }

    pub fn new(name: impl Into<Arc<str>>, proof: Proof) -> Self {
        Self {
            name: name.into(),
            proof,
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name as a shareable key (per-caller limits).
    pub fn key(&self) -> Arc<str> {
        self.name.clone()
    }

    pub fn proof(&self) -> Proof {
        self.proof
    }

    pub fn is_authenticated(&self) -> bool {
        self.proof != Proof::None
    }
}

impl fmt::Debug for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Identity({:?} by {:?})", self.name, self.proof)
    }
}

impl fmt::Display for Identity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a call authenticated with, kept for as long as the call lasts so
/// that a reload can tell whether it still would: never the token itself,
/// and its hash never shown.
#[derive(Clone, PartialEq, Eq)]
pub enum Credential {
    /// Authentication is off.
    None,
    /// A bearer token, by its SHA-256 (what the tokens file holds).
    Token([u8; 32]),
    /// The connection's client certificate.
    Certificate,
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Credential::None => "None",
            Credential::Token(_) => "Token(***)",
            Credential::Certificate => "Certificate",
        })
    }
}

/// Why a caller was not authenticated. The texts go to the caller: they
/// say what was missing or wrong, never what was presented.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("this service needs a bearer token or a client certificate")]
    Missing,
    #[error("the authorization header must be `Bearer <token>`")]
    Malformed,
    #[error("the bearer token is not valid")]
    UnknownToken,
    #[error("the client certificate names no identity (a SAN URI or DNS name)")]
    NoCertificateIdentity,
}

impl AuthError {
    pub const ALL: [AuthError; 4] = [
        AuthError::Missing,
        AuthError::Malformed,
        AuthError::UnknownToken,
        AuthError::NoCertificateIdentity,
    ];

    /// Short, stable, for the audit log and the metrics.
    pub fn kind(self) -> &'static str {
        match self {
            AuthError::Missing => "missing_credentials",
            AuthError::Malformed => "malformed_authorization",
            AuthError::UnknownToken => "unknown_token",
            AuthError::NoCertificateIdentity => "certificate_without_identity",
        }
    }
}

/// Turns what a call presents into an identity.
///
/// Rules, in order: with no method configured every caller is anonymous;
/// an `authorization` header, when tokens are configured, must hold a valid
/// token and decides alone (a wrong token is refused even on a connection
/// with a valid certificate); otherwise a verified client certificate
/// names the caller; otherwise the call is refused.
#[derive(Debug)]
pub struct Authenticator {
    tokens: Option<Arc<TokenStore>>,
    certificates: bool,
}

impl Authenticator {
    pub fn new(tokens: Option<Arc<TokenStore>>, certificates: bool) -> Self {
        Self {
            tokens,
            certificates,
        }
    }

    /// Whether any authentication method is configured.
    pub fn enabled(&self) -> bool {
        self.tokens.is_some() || self.certificates
    }

    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<Identity, AuthError> {
        self.authenticate_with(headers, peer_certs)
            .map(|(identity, _)| identity)
    }

    /// The identity, and what proved it.
    pub fn authenticate_with(
        &self,
        headers: &HeaderMap,
        peer_certs: Option<&[CertificateDer<'_>]>,
    ) -> Result<(Identity, Credential), AuthError> {
        if !self.enabled() {
            return Ok((Identity::anonymous(), Credential::None));
        }
        if let (Some(tokens), Some(value)) =
            (&self.tokens, headers.get(http::header::AUTHORIZATION))
        {
            let token = tokens::bearer(value.as_bytes()).ok_or(AuthError::Malformed)?;
            let hash = tokens::hash(token);
            return tokens
                .verify_hash(&hash)
                .map(|name| (Identity::new(name, Proof::Token), Credential::Token(hash)))
                .ok_or(AuthError::UnknownToken);
        }
        if self.certificates
            && let Some(leaf) = peer_certs.and_then(<[_]>::first)
        {
            // rustls has verified the chain against the client CA already.
            return cert::identity(leaf)
                .map(|name| {
                    (
                        Identity::new(name, Proof::Certificate),
                        Credential::Certificate,
                    )
                })
                .ok_or(AuthError::NoCertificateIdentity);
        }
        Err(AuthError::Missing)
    }

    /// Whether `credential` would still prove `identity` (a certificate's
    /// chain is checked against the client CA by the caller).
    pub fn still_proves(&self, credential: &Credential, identity: &str) -> bool {
        match credential {
            Credential::None => !self.enabled(),
            Credential::Token(hash) => self
                .tokens
                .as_ref()
                .and_then(|t| t.verify_hash(hash))
                .is_some_and(|name| &*name == identity),
            Credential::Certificate => self.certificates,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_never_shows_its_hash() {
        let hash = tokens::hash("a-token-0123456789abcdef");
        let shown = format!("{:?}", Credential::Token(hash));
        assert_eq!(shown, "Token(***)");
        assert!(!shown.contains(&hex::encode(hash)[..8]));
    }

    #[test]
    fn a_token_still_proves_only_the_identity_it_named() {
        let line = |id: &str, t: &str| format!("{id} sha256:{}\n", hex::encode(tokens::hash(t)));
        let store = |text: String| Some(Arc::new(TokenStore::parse(&text).unwrap()));
        let token = "dashboard-token-0123456789abcdef";
        let before = Authenticator::new(store(line("dashboard", token)), false);
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::AUTHORIZATION,
            format!("Bearer {token}").parse().unwrap(),
        );
        let (identity, credential) = before.authenticate_with(&headers, None).unwrap();
        assert!(before.still_proves(&credential, identity.name()));
        // Removed, or given to someone else: revoked either way.
        let removed = Authenticator::new(store(line("ops", "ops-token-0123456789abcdef")), false);
        assert!(!removed.still_proves(&credential, identity.name()));
        let moved = Authenticator::new(store(line("someone-else", token)), false);
        assert!(!moved.still_proves(&credential, identity.name()));
    }
}
