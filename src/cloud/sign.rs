//! Request signing for the Alibaba Cloud OpenAPI, both algorithms the VPC
//! API accepts: V3 `ACS3-HMAC-SHA256` (the current SDKs' default) and the
//! legacy RPC signature (HMAC-SHA1, SignatureVersion 1.0).
//!
//! Everything here is a pure function of its inputs — method, host, path,
//! parameters, headers, body, credentials, date and nonce — so the captured
//! SDK requests in the wire reference can be replayed byte for byte as test
//! vectors. Nothing reads the clock, the environment or the network; the
//! client supplies a fresh date and nonce for every attempt.

use std::time::SystemTime;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::credentials::Credentials;
pub use super::percent::percent_encode;

/// The V3 algorithm name, which also opens the string to sign.
pub const V3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// Lowercase hex SHA-256 of an empty body.
pub const EMPTY_BODY_SHA256: &str =
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";

/// The date format both signatures use: UTC `yyyy-MM-ddTHH:mm:ssZ`.
pub fn format_date(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}

/// A unique nonce per attempt: 32 lowercase hex characters, like the SDK's.
pub fn new_nonce() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// `name=value` pairs sorted by name (byte order, then value, so duplicate
/// names stay deterministic), each side percent-encoded, joined by `&`. The
/// same string is the canonical query of both signatures and the URL query
/// the client sends.
pub fn canonical_query(params: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = params.iter().collect();
    sorted.sort();
    sorted
        .iter()
        .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
        .collect::<Vec<_>>()
        .join("&")
}

/// What a V3 signature covers, all given explicitly.
#[derive(Clone, Copy, Debug)]
pub struct V3Input<'a> {
    pub method: &'a str,
    /// `host` or `host:port` as the request's Host header carries it.
    pub host: &'a str,
    /// The request path, `/` for the RPC APIs.
    pub path: &'a str,
    /// Parameters that travel in the URL query.
    pub query: &'a [(String, String)],
    /// Extra headers to sign besides those the signer adds itself (for
    /// example `x-acs-action`, `x-acs-version`, `content-type`).
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
    /// `x-acs-date`, already formatted.
    pub date: &'a str,
    /// `x-acs-signature-nonce`.
    pub nonce: &'a str,
}

/// A V3-signed request: the headers to send and the intermediate strings,
/// kept so tests and debugging can compare them with the server's.
#[derive(Clone)]
pub struct V3Signed {
    /// Every signed header, lowercase names, in canonical order, then
    /// `authorization` last.
    pub headers: Vec<(String, String)>,
    pub canonical_query: String,
    pub canonical_request: String,
    pub string_to_sign: String,
    pub signature: String,
    pub signed_headers: String,
}

impl std::fmt::Debug for V3Signed {
    // The headers hold the STS token: show only what identifies the request.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V3Signed")
            .field("signed_headers", &self.signed_headers)
            .finish_non_exhaustive()
    }
}

/// Signs a request with ACS3-HMAC-SHA256.
///
/// Adds `host`, `x-acs-date`, `x-acs-signature-nonce`,
/// `x-acs-content-sha256` and, for STS credentials, `x-acs-accesskey-id` and
/// `x-acs-security-token` to `input.headers`, and signs all of them.
pub fn sign_v3(input: &V3Input<'_>, credentials: &Credentials) -> V3Signed {
    let payload_hash = sha256_hex(input.body);
    let mut headers: Vec<(String, String)> = input
        .headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    headers.push(("host".into(), input.host.to_owned()));
    headers.push(("x-acs-date".into(), input.date.to_owned()));
    headers.push(("x-acs-signature-nonce".into(), input.nonce.to_owned()));
    headers.push(("x-acs-content-sha256".into(), payload_hash.clone()));
    if let Some(token) = credentials.security_token() {
        headers.push((
            "x-acs-accesskey-id".into(),
            credentials.access_key_id().to_owned(),
        ));
        headers.push(("x-acs-security-token".into(), token.to_owned()));
    }
    headers.sort();
    let headers = merge_duplicate_headers(headers);

    let canonical_headers: String = headers.iter().map(|(k, v)| format!("{k}:{v}\n")).collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_query = canonical_query(input.query);
    let path = if input.path.is_empty() {
        "/".to_owned()
    } else {
        encode_path(input.path)
    };
    let canonical_request = format!(
        "{}\n{}\n{}\n{}\n{}\n{}",
        input.method, path, canonical_query, canonical_headers, signed_headers, payload_hash
    );
    let string_to_sign = format!(
        "{V3_ALGORITHM}\n{}",
        sha256_hex(canonical_request.as_bytes())
    );
    let signature = hex::encode(hmac_sha256(
        credentials.access_key_secret().as_bytes(),
        string_to_sign.as_bytes(),
    ));
    let authorization = format!(
        "{V3_ALGORITHM} Credential={},SignedHeaders={},Signature={}",
        credentials.access_key_id(),
        signed_headers,
        signature
    );
    let mut headers = headers;
    headers.push(("authorization".into(), authorization));
    V3Signed {
        headers,
        canonical_query,
        canonical_request,
        string_to_sign,
        signature,
        signed_headers,
    }
}

/// Several values for one header name are sorted (already) and joined by `,`.
fn merge_duplicate_headers(sorted: Vec<(String, String)>) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::with_capacity(sorted.len());
    for (k, v) in sorted {
        match out.last_mut() {
            Some((last, values)) if *last == k => {
                values.push(',');
                values.push_str(&v);
            }
            _ => out.push((k, v)),
        }
    }
    out
}

/// Each path segment percent-encoded, the slashes kept.
fn encode_path(path: &str) -> String {
    path.split('/')
        .map(percent_encode)
        .collect::<Vec<_>>()
        .join("/")
}

/// What a legacy RPC (V1) signature covers.
#[derive(Clone, Copy, Debug)]
pub struct V1Input<'a> {
    pub method: &'a str,
    pub action: &'a str,
    pub version: &'a str,
    /// The operation's parameters (query and form body alike: V1 signs both).
    pub params: &'a [(String, String)],
    /// `Timestamp`, already formatted.
    pub date: &'a str,
    /// `SignatureNonce`.
    pub nonce: &'a str,
    /// `Format`; the current SDK sends `json`.
    pub format: &'a str,
}

/// A V1-signed parameter set.
#[derive(Clone)]
pub struct V1Signed {
    /// Every signed parameter (common ones included), sorted.
    pub params: Vec<(String, String)>,
    pub canonical_query: String,
    pub string_to_sign: String,
    /// Base64, not yet URL-encoded.
    pub signature: String,
}

impl V1Signed {
    /// The URL query to send: the canonical query plus `Signature`.
    pub fn url_query(&self) -> String {
        format!(
            "{}&Signature={}",
            self.canonical_query,
            percent_encode(&self.signature)
        )
    }
}

impl std::fmt::Debug for V1Signed {
    // The parameters hold the STS token.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("V1Signed").finish_non_exhaustive()
    }
}

/// Signs a parameter set with HMAC-SHA1, SignatureVersion 1.0.
///
/// Adds the common parameters (`Action`, `Format`, `Version`, `Timestamp`,
/// `SignatureNonce`, `SignatureMethod`, `SignatureVersion`, `AccessKeyId`,
/// and `SecurityToken` for STS credentials) to `input.params`.
pub fn sign_v1(input: &V1Input<'_>, credentials: &Credentials) -> V1Signed {
    let mut params: Vec<(String, String)> = input.params.to_vec();
    let common = [
        ("Action", input.action),
        ("Format", input.format),
        ("Version", input.version),
        ("Timestamp", input.date),
        ("SignatureNonce", input.nonce),
        ("SignatureMethod", "HMAC-SHA1"),
        ("SignatureVersion", "1.0"),
        ("AccessKeyId", credentials.access_key_id()),
    ];
    params.extend(
        common
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned())),
    );
    if let Some(token) = credentials.security_token() {
        params.push(("SecurityToken".into(), token.to_owned()));
    }
    params.sort();
    let canonical_query = canonical_query(&params);
    let string_to_sign = format!(
        "{}&{}&{}",
        input.method,
        percent_encode("/"),
        percent_encode(&canonical_query)
    );
    let key = format!("{}&", credentials.access_key_secret());
    let signature = base64::engine::general_purpose::STANDARD
        .encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()));
    V1Signed {
        params,
        canonical_query,
        string_to_sign,
        signature,
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Vec<u8> {
    // HMAC accepts keys of any length, so `new_from_slice` cannot fail here;
    // the fallback keeps request paths free of panics all the same.
    match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn hmac_sha1(key: &[u8], msg: &[u8]) -> Vec<u8> {
    match Hmac::<Sha1>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(msg);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_encoding_follows_rfc3986() {
        assert_eq!(percent_encode("a b*c/d~e_f.g-h"), "a%20b%2Ac%2Fd~e_f.g-h");
        assert_eq!(percent_encode("ä+="), "%C3%A4%2B%3D");
    }

    #[test]
    fn dates_are_utc_seconds() {
        let t = SystemTime::UNIX_EPOCH + std::time::Duration::from_millis(1_795_629_772_900);
        assert_eq!(format_date(t), "2026-11-25T18:02:52Z");
    }

    #[test]
    fn nonces_are_32_hex_and_fresh() {
        let (a, b) = (new_nonce(), new_nonce());
        assert_eq!(a.len(), 32);
        assert!(a.bytes().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(a, b);
    }

    #[test]
    fn duplicate_headers_are_joined() {
        let merged = merge_duplicate_headers(vec![
            ("a".into(), "1".into()),
            ("a".into(), "2".into()),
            ("b".into(), "3".into()),
        ]);
        assert_eq!(
            merged,
            vec![("a".into(), "1,2".into()), ("b".into(), "3".into())]
        );
    }
}
