//! The identity a client certificate names.
//!
//! rustls has already verified the chain against the configured client CA
//! by the time a call arrives; what is left is reading the leaf's subject
//! alternative names. `rustls-webpki` (already in the tree as rustls's
//! verifier) parses them, so no general X.509 parser is needed: the first
//! SAN URI (a SPIFFE id such as `spiffe://corp.example/ns/ops/sa/deployer`)
//! names the caller, else the first DNS name. The subject's common name is
//! deliberately ignored, as modern verifiers do.

use tokio_rustls::rustls::pki_types::CertificateDer;

/// Longest identity taken from a certificate.
const MAX_NAME_LEN: usize = 256;

/// The caller's name from a verified leaf certificate, if it has one.
pub fn identity(leaf: &CertificateDer<'_>) -> Option<String> {
    let cert = webpki::EndEntityCert::try_from(leaf).ok()?;
    // A wildcard DNS name names no single caller.
    let printable = |s: &&str| {
        !s.is_empty()
            && s.len() <= MAX_NAME_LEN
            && s.bytes().all(|b| b.is_ascii_graphic() && b != b'*')
    };
    let uri = cert.valid_uri_names().find(printable);
    let name = uri.or_else(|| cert.valid_dns_names().find(printable))?;
    Some(name.to_owned())
}
