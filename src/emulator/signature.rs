//! The two request signatures the VPC API accepts, verified from the raw
//! request: V3 `ACS3-HMAC-SHA256` (the current SDKs' default, in the
//! `Authorization` header) and the legacy RPC `HMAC-SHA1` (SignatureVersion
//! 1.0, in the `Signature` parameter).
//!
//! This is written from the prose algorithm of the wire reference (§1.3,
//! §1.4), independently of the gateway's own signer, so that each checks the
//! other; the captured SDK requests of §2 are its unit tests. Only the
//! algorithms live here: which keys exist, the clock window and spent nonces
//! are `auth`'s business.

use base64::Engine;
use hmac::{Hmac, Mac};
use http::HeaderMap;
use sha1::Sha1;
use sha2::{Digest, Sha256};

use super::{
    errors::{ApiError, code},
    wire::{Params, percent_encode},
};

/// The V3 algorithm name, in `Authorization` and the string to sign.
pub const ACS3_HMAC_SHA256: &str = "ACS3-HMAC-SHA256";
/// The legacy `SignatureMethod` / `SignatureVersion`.
pub const HMAC_SHA1: &str = "HMAC-SHA1";
pub const SIGNATURE_VERSION_1: &str = "1.0";

/// V3 headers that must be present and signed.
const V3_REQUIRED_SIGNED: [&str; 6] = [
    "host",
    "x-acs-action",
    "x-acs-version",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-content-sha256",
];

/// Parameters of the legacy signature that are not the operation's own.
pub const V1_COMMON_PARAMS: [&str; 11] = [
    "Action",
    "Version",
    "Format",
    "Timestamp",
    "SignatureNonce",
    "SignatureMethod",
    "SignatureVersion",
    "SignatureType",
    "AccessKeyId",
    "SecurityToken",
    "Signature",
];

/// The parts of a request a signature covers.
#[derive(Clone, Copy, Debug)]
pub struct RequestView<'a> {
    /// `GET` or `POST`, as received.
    pub method: &'a str,
    /// The decoded query string.
    pub query: &'a Params,
    /// The decoded form body (empty when the body is not a form).
    pub form: &'a Params,
    pub headers: &'a HeaderMap,
    pub body: &'a [u8],
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algorithm {
    /// `ACS3-HMAC-SHA256`.
    V3,
    /// RPC `HMAC-SHA1`, SignatureVersion 1.0.
    V1,
}

/// What a request claims about itself, read before any key is looked up.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Claims {
    pub algorithm: Algorithm,
    pub access_key_id: String,
    pub timestamp: String,
    pub nonce: String,
    pub action: String,
    pub version: String,
    pub security_token: Option<String>,
    /// V3 only: the `x-acs-accesskey-id` header STS callers add.
    pub access_key_header: Option<String>,
    signature: String,
    signed_headers: Vec<String>,
}

impl Claims {
    /// Reads the claims of either algorithm: `Authorization: ACS3-…` means
    /// V3, a `Signature` parameter means the legacy one.
    pub fn read(req: &RequestView<'_>) -> Result<Claims, ApiError> {
        match header(req.headers, "authorization") {
            Some(auth) => Self::read_v3(req, &auth),
            None => Self::read_v1(req),
        }
    }

    fn read_v3(req: &RequestView<'_>, authorization: &str) -> Result<Claims, ApiError> {
        let incomplete =
            |why: &str| ApiError::bad_request(code::INCOMPLETE_SIGNATURE, why.to_owned());
        let (algorithm, rest) = authorization
            .trim()
            .split_once(' ')
            .ok_or_else(|| incomplete("The Authorization header is malformed."))?;
        if algorithm != ACS3_HMAC_SHA256 {
            return Err(incomplete(
                "The signature algorithm in the Authorization header is not supported: use ACS3-HMAC-SHA256.",
            ));
        }
        let (mut credential, mut signed_headers, mut signature) = (None, None, None);
        for part in rest.split(',') {
            match part.trim().split_once('=') {
                Some(("Credential", v)) => credential = Some(v.trim()),
                Some(("SignedHeaders", v)) => signed_headers = Some(v.trim()),
                Some(("Signature", v)) => signature = Some(v.trim()),
                _ => {}
            }
        }
        let (Some(credential), Some(signed_headers), Some(signature)) =
            (credential, signed_headers, signature)
        else {
            return Err(incomplete(
                "The Authorization header must carry Credential, SignedHeaders and Signature.",
            ));
        };
        if credential.is_empty() || signature.is_empty() || signed_headers.is_empty() {
            return Err(incomplete("The Authorization header has an empty field."));
        }
        let signed: Vec<String> = signed_headers.split(';').map(str::to_owned).collect();
        if signed
            .iter()
            .any(|h| h.is_empty() || *h != h.to_ascii_lowercase())
        {
            return Err(incomplete(
                "SignedHeaders must list lowercase header names separated by ';'.",
            ));
        }
        let mut must_sign: Vec<&str> = V3_REQUIRED_SIGNED.to_vec();
        if req.headers.contains_key("x-acs-security-token") {
            must_sign.push("x-acs-security-token");
        }
        for name in must_sign {
            if header(req.headers, name).is_none() {
                return Err(ApiError::bad_request(
                    code::MISSING_PARAMETER,
                    format!(
                        "The header \"{name}\" that is mandatory for processing this request is not supplied."
                    ),
                ));
            }
            if !signed.iter().any(|h| h == name) {
                return Err(incomplete(&format!(
                    "The header \"{name}\" must be signed."
                )));
            }
        }
        if let Some(missing) = signed
            .iter()
            .find(|h| !req.headers.contains_key(h.as_str()))
        {
            return Err(incomplete(&format!(
                "The signed header \"{missing}\" is not in the request."
            )));
        }
        let get = |name: &str| header(req.headers, name).unwrap_or_default();
        Ok(Claims {
            algorithm: Algorithm::V3,
            access_key_id: credential.to_owned(),
            timestamp: get("x-acs-date"),
            nonce: get("x-acs-signature-nonce"),
            action: get("x-acs-action"),
            version: get("x-acs-version"),
            security_token: header(req.headers, "x-acs-security-token"),
            access_key_header: header(req.headers, "x-acs-accesskey-id"),
            signature: signature.to_owned(),
            signed_headers: signed,
        })
    }

    fn read_v1(req: &RequestView<'_>) -> Result<Claims, ApiError> {
        let param = |name: &str| {
            req.query
                .non_empty(name)
                .or_else(|| req.form.non_empty(name))
                .map(str::to_owned)
        };
        let required = |name: &str| param(name).ok_or_else(|| ApiError::missing(name));
        let action = required("Action")?;
        let access_key_id = required("AccessKeyId")?;
        let signature = required("Signature")?;
        let method = required("SignatureMethod")?;
        if method != HMAC_SHA1 {
            return Err(ApiError::invalid(
                "SignatureMethod",
                format!("The SignatureMethod \"{method}\" is not supported: use HMAC-SHA1."),
            ));
        }
        let version = required("SignatureVersion")?;
        if version != SIGNATURE_VERSION_1 {
            return Err(ApiError::invalid(
                "SignatureVersion",
                format!("The SignatureVersion \"{version}\" is not supported: use 1.0."),
            ));
        }
        Ok(Claims {
            algorithm: Algorithm::V1,
            access_key_id,
            timestamp: required("Timestamp")?,
            nonce: required("SignatureNonce")?,
            version: required("Version")?,
            action,
            security_token: param("SecurityToken"),
            access_key_header: None,
            signature,
            signed_headers: Vec::new(),
        })
    }

    /// Checks the signature with the key's secret; on mismatch the message
    /// ends with the server's string to sign, as the cloud's does (the
    /// legacy SDK compares it with its own).
    pub fn verify(&self, req: &RequestView<'_>, secret: &str) -> Result<(), ApiError> {
        match self.algorithm {
            Algorithm::V3 => {
                let declared = header(req.headers, "x-acs-content-sha256").unwrap_or_default();
                if !declared.eq_ignore_ascii_case(&hex::encode(Sha256::digest(req.body))) {
                    return Err(ApiError::bad_request(
                        code::SIGNATURE_DOES_NOT_MATCH,
                        "The x-acs-content-sha256 header does not match the SHA-256 of the request body.",
                    ));
                }
                let to_sign = string_to_sign_v3(&canonical_request_v3(req, &self.signed_headers));
                let ok = hex::decode(&self.signature).is_ok_and(|given| {
                    hmac_sha256(secret.as_bytes(), to_sign.as_bytes())
                        .verify_slice(&given)
                        .is_ok()
                });
                mismatch_unless(ok, &to_sign)
            }
            Algorithm::V1 => {
                let to_sign = string_to_sign_v1(req.method, &v1_signed_params(req));
                let key = format!("{secret}&");
                let ok = base64::engine::general_purpose::STANDARD
                    .decode(self.signature.as_bytes())
                    .is_ok_and(|given| {
                        let mut mac = match Hmac::<Sha1>::new_from_slice(key.as_bytes()) {
                            Ok(mac) => mac,
                            Err(_) => return false,
                        };
                        mac.update(to_sign.as_bytes());
                        mac.verify_slice(&given).is_ok()
                    });
                mismatch_unless(ok, &to_sign)
            }
        }
    }

    /// The operation's own parameters: for V3 the query and the form body;
    /// for V1 the same without the signature's common parameters.
    pub fn operation_params(&self, req: &RequestView<'_>) -> Params {
        let mut all = req.query.clone();
        all.extend(req.form.clone());
        match self.algorithm {
            Algorithm::V3 => all,
            Algorithm::V1 => all.without(&V1_COMMON_PARAMS),
        }
    }
}

fn mismatch_unless(ok: bool, to_sign: &str) -> Result<(), ApiError> {
    if ok {
        Ok(())
    } else {
        Err(ApiError::bad_request(
            code::SIGNATURE_DOES_NOT_MATCH,
            format!(
                "Specified signature is not matched with our calculation. server string to sign is:{to_sign}"
            ),
        ))
    }
}

fn hmac_sha256(key: &[u8], msg: &[u8]) -> Hmac<Sha256> {
    // HMAC takes keys of any length; this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => Hmac::<Sha256>::new(&Default::default()),
    };
    mac.update(msg);
    mac
}

/// One header's value, lossy, or `None` when absent.
fn header(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// The V3 canonical request (reference §1.4). The path is always `/`: the
/// API lives nowhere else.
pub fn canonical_request_v3(req: &RequestView<'_>, signed_headers: &[String]) -> String {
    let mut canonical_headers = String::new();
    for name in signed_headers {
        let mut values: Vec<String> = req
            .headers
            .get_all(name.as_str())
            .iter()
            .map(|v| String::from_utf8_lossy(v.as_bytes()).trim().to_owned())
            .collect();
        values.sort();
        canonical_headers.push_str(&format!("{name}:{}\n", values.join(",")));
    }
    let payload_hash = header(req.headers, "x-acs-content-sha256").unwrap_or_default();
    format!(
        "{}\n/\n{}\n{canonical_headers}\n{}\n{payload_hash}",
        req.method,
        req.query.canonical(),
        signed_headers.join(";"),
    )
}

/// `ACS3-HMAC-SHA256\n` + hex(SHA-256(canonical request)).
pub fn string_to_sign_v3(canonical_request: &str) -> String {
    format!(
        "{ACS3_HMAC_SHA256}\n{}",
        hex::encode(Sha256::digest(canonical_request.as_bytes()))
    )
}

/// Every parameter the legacy signature covers: query and form body, less
/// `Signature` itself.
fn v1_signed_params(req: &RequestView<'_>) -> Params {
    let mut all = req.query.without(&["Signature"]);
    all.extend(req.form.without(&["Signature"]));
    all
}

/// `METHOD&%2F&pct(canonical query)` (reference §1.3).
pub fn string_to_sign_v1(method: &str, params: &Params) -> String {
    format!(
        "{method}&{}&{}",
        percent_encode("/"),
        percent_encode(&params.canonical())
    )
}

#[cfg(test)]
pub(crate) mod tests;
