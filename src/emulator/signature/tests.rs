//! The captured SDK requests of the wire reference, fed to the verifier.

use http::{HeaderMap, HeaderName, HeaderValue};

use super::*;

pub(crate) const SECRET: &str = "FakeSecret0123456789abcdefABCDEF";
pub(crate) const ACCESS_KEY_ID: &str = "LTAI5tFAKEACCESSKEYID";
pub(crate) const STS_TOKEN: &str = "CAIS.FAKE+STS/Token==";

/// A request as a server sees it: decoded query and form, headers, body.
pub(crate) struct RawRequest {
    pub method: String,
    pub query: Params,
    pub form: Params,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl RawRequest {
    pub fn view(&self) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            query: &self.query,
            form: &self.form,
            headers: &self.headers,
            body: &self.body,
        }
    }

    /// The request's own clock reading (`x-acs-date` or `Timestamp`).
    pub fn timestamp(&self) -> std::time::SystemTime {
        let raw = self
            .headers
            .get("x-acs-date")
            .map(|v| v.to_str().unwrap().to_owned())
            .or_else(|| self.query.get("Timestamp").map(str::to_owned))
            .unwrap();
        crate::emulator::wire::parse_timestamp(&raw).unwrap()
    }

    pub fn set_query(&mut self, raw: &str) {
        self.query = Params::parse(raw.as_bytes());
    }
}

/// Parses one HTTP/1.1 request as printed in the reference.
pub(crate) fn parse_raw(text: &str) -> RawRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().unwrap();
    let mut parts = request_line.split(' ');
    let method = parts.next().unwrap().to_owned();
    let target = parts.next().unwrap();
    let query = target.split_once('?').map(|(_, q)| q).unwrap_or("");
    let mut headers = HeaderMap::new();
    for line in lines {
        let (name, value) = line.split_once(": ").unwrap();
        headers.append(
            HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
            HeaderValue::from_str(value).unwrap(),
        );
    }
    let is_form = headers.get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap()
            .starts_with("application/x-www-form-urlencoded")
    });
    RawRequest {
        method,
        query: Params::parse(query.as_bytes()),
        form: if is_form {
            Params::parse(body.as_bytes())
        } else {
            Params::default()
        },
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// Every captured request of `vectors.http`, in file order.
pub(crate) fn vectors() -> Vec<RawRequest> {
    include_str!("vectors.http")
        .split("\n#####\n")
        .filter(|chunk| !chunk.starts_with('#'))
        .map(parse_raw)
        .collect()
}

fn verify(req: &RawRequest, secret: &str) -> Result<Claims, ApiError> {
    let claims = Claims::read(&req.view())?;
    claims.verify(&req.view(), secret)?;
    Ok(claims)
}

#[test]
fn every_captured_request_verifies() {
    let all = vectors();
    assert_eq!(all.len(), 15, "13 from the reference + 2 GET captures");
    for (i, req) in all.iter().enumerate() {
        let claims = verify(req, SECRET).unwrap_or_else(|e| panic!("vector {i}: {e}"));
        assert_eq!(claims.access_key_id, ACCESS_KEY_ID, "vector {i}");
        assert_eq!(claims.version, "2016-04-28", "vector {i}");
    }
}

#[test]
fn algorithms_are_told_apart() {
    let all = vectors();
    let algorithms: Vec<Algorithm> = all
        .iter()
        .map(|r| Claims::read(&r.view()).unwrap().algorithm)
        .collect();
    use Algorithm::{V1, V3};
    assert_eq!(
        &algorithms[..13],
        &[V3, V3, V3, V3, V1, V1, V1, V1, V3, V1, V3, V1, V1]
    );
}

#[test]
fn v3_canonical_request_matches_the_reference() {
    let req = &vectors()[0];
    let claims = Claims::read(&req.view()).unwrap();
    let canonical = canonical_request_v3(&req.view(), &claims.signed_headers);
    let expected = "POST\n/\nCipher=AES-128-CBC&ClientIpPool=10.10.0.0%2F24&ClientToken=02fb3da4-130e-11e9-8e44-001%2A%2A%2A%2A&Compress=False&LocalSubnet=192.168.0.0%2F24%2C172.16.1.0%2F24&Name=sslvpn%20test~%2F%C3%A4&Port=1194&Proto=UDP&RegionId=cn-hangzhou&SslVpnServerId=vss-bp18q7hzj6largv4v%2A%2A%2A%2A\naccept:application/json\nhost:127.0.0.1:18080\nuser-agent:AlibabaCloud (Linux; x86_64) Python/3.11.7 Core/0.4.3 TeaDSL/2\nx-acs-action:ModifySslVpnServer\nx-acs-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\nx-acs-credentials-provider:static_ak\nx-acs-date:2026-11-25T18:02:52Z\nx-acs-signature-nonce:b58c21b11619bcb8bfdc6c9465362c6b\nx-acs-version:2016-04-28\n\naccept;host;user-agent;x-acs-action;x-acs-content-sha256;x-acs-credentials-provider;x-acs-date;x-acs-signature-nonce;x-acs-version\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    assert_eq!(canonical, expected);
    assert_eq!(
        string_to_sign_v3(&canonical),
        "ACS3-HMAC-SHA256\n5be792f3a20eb4cc7f7c6c088ceb3b225c2f9f8788efa9c88c558bc0ad2fc027"
    );
}

#[test]
fn v1_string_to_sign_matches_the_reference() {
    let req = &vectors()[4];
    let to_sign = string_to_sign_v1(&req.method, &v1_signed_params(&req.view()));
    assert_eq!(
        to_sign,
        "POST&%2F&AccessKeyId%3DLTAI5tFAKEACCESSKEYID%26Action%3DModifySslVpnServer%26Cipher%3DAES-128-CBC%26ClientIpPool%3D10.10.0.0%252F24%26ClientToken%3D02fb3da4-130e-11e9-8e44-001%252A%252A%252A%252A%26Compress%3DFalse%26Format%3Djson%26LocalSubnet%3D192.168.0.0%252F24%252C172.16.1.0%252F24%26Name%3Dsslvpn%2520test~%252F%25C3%25A4%26Port%3D1194%26Proto%3DUDP%26RegionId%3Dcn-hangzhou%26SignatureMethod%3DHMAC-SHA1%26SignatureNonce%3Df2584fa2b16c66368d07030196512e75%26SignatureVersion%3D1.0%26SslVpnServerId%3Dvss-bp18q7hzj6largv4v%252A%252A%252A%252A%26Timestamp%3D2026-11-25T18%253A02%253A54Z%26Version%3D2016-04-28"
    );
}

#[test]
fn sts_tokens_are_read_from_header_and_parameter() {
    let all = vectors();
    let v3 = Claims::read(&all[8].view()).unwrap();
    assert_eq!(v3.security_token.as_deref(), Some(STS_TOKEN));
    assert_eq!(v3.access_key_header.as_deref(), Some(ACCESS_KEY_ID));
    let v1 = Claims::read(&all[9].view()).unwrap();
    assert_eq!(v1.security_token.as_deref(), Some(STS_TOKEN));
}

#[test]
fn operation_params_leave_out_the_signature_parameters() {
    let all = vectors();
    let v1 = &all[11];
    let params = Claims::read(&v1.view())
        .unwrap()
        .operation_params(&v1.view());
    let names: Vec<&str> = params.iter().map(|(n, _)| n).collect();
    assert_eq!(names, ["RegionId", "SslVpnServerId", "LocalSubnet", "Name"]);
    let v3 = &all[10];
    let params = Claims::read(&v3.view())
        .unwrap()
        .operation_params(&v3.view());
    assert_eq!(params.get("Name"), Some("sslvpn test"));
    assert_eq!(params.get("RegionId"), Some("cn-hangzhou"));
}

fn code_of(result: Result<Claims, ApiError>) -> String {
    result.unwrap_err().code.into_owned()
}

#[test]
fn a_wrong_secret_is_refused_with_the_server_string_to_sign() {
    for i in [0, 4] {
        let err = verify(&vectors()[i], "not-the-secret").unwrap_err();
        assert_eq!(err.code, code::SIGNATURE_DOES_NOT_MATCH);
        assert_eq!(err.status, http::StatusCode::BAD_REQUEST);
        assert!(
            err.message.contains("server string to sign is:"),
            "{}",
            err.message
        );
    }
}

#[test]
fn tampered_query_values_are_refused() {
    for i in [0, 4] {
        let mut req = vectors().swap_remove(i);
        let mut query: Vec<(String, String)> = req
            .query
            .iter()
            .map(|(n, v)| (n.to_owned(), v.to_owned()))
            .collect();
        for (n, v) in &mut query {
            if n == "Port" {
                *v = "1195".into();
            }
        }
        req.query = Params::default();
        for (n, v) in query {
            req.query.push(n, v);
        }
        assert_eq!(
            code_of(verify(&req, SECRET)),
            code::SIGNATURE_DOES_NOT_MATCH,
            "vector {i}"
        );
    }
}

#[test]
fn tampered_signed_headers_and_bodies_are_refused() {
    let mut req = vectors().swap_remove(1);
    req.headers.insert(
        "x-acs-date",
        HeaderValue::from_static("2026-11-25T18:02:59Z"),
    );
    assert_eq!(
        code_of(verify(&req, SECRET)),
        code::SIGNATURE_DOES_NOT_MATCH
    );

    // V3 form body: covered by x-acs-content-sha256.
    let mut req = vectors().swap_remove(10);
    req.body = b"LocalSubnet=10.0.0.0%2F8&Name=sslvpn+test".to_vec();
    let err = verify(&req, SECRET).unwrap_err();
    assert_eq!(err.code, code::SIGNATURE_DOES_NOT_MATCH);
    assert!(err.message.contains("x-acs-content-sha256"));

    // V1 form body: covered by the signed parameter set.
    let mut req = vectors().swap_remove(11);
    req.form = Params::parse(b"LocalSubnet=10.0.0.0%2F8&Name=sslvpn+test");
    assert_eq!(
        code_of(verify(&req, SECRET)),
        code::SIGNATURE_DOES_NOT_MATCH
    );

    // An unsigned header may change freely.
    let mut req = vectors().swap_remove(1);
    req.headers
        .insert("accept-encoding", HeaderValue::from_static("gzip"));
    assert!(verify(&req, SECRET).is_ok());
}

#[test]
fn malformed_authorization_is_incomplete() {
    let cases = [
        "garbage",
        "ACS3-HMAC-SHA256",
        "ACS3-HMAC-SM3 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=host,Signature=00",
        "ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,Signature=00",
        "ACS3-HMAC-SHA256 Credential=,SignedHeaders=host,Signature=00",
        // x-acs-date is present but not signed.
        "ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-signature-nonce;x-acs-version,Signature=00",
        // Signs a header the request does not have.
        "ACS3-HMAC-SHA256 Credential=LTAI5tFAKEACCESSKEYID,SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version;x-absent,Signature=00",
        "ACS3-HMAC-SHA256 Credential=K,SignedHeaders=Host;x-acs-date,Signature=00",
    ];
    for auth in cases {
        let mut req = vectors().swap_remove(1);
        req.headers
            .insert("authorization", HeaderValue::from_str(auth).unwrap());
        assert_eq!(
            code_of(verify(&req, SECRET)),
            code::INCOMPLETE_SIGNATURE,
            "{auth}"
        );
    }
}

#[test]
fn bad_hex_or_base64_signatures_do_not_match() {
    let mut req = vectors().swap_remove(1);
    let auth = req.headers["authorization"].to_str().unwrap().to_owned();
    let (head, _) = auth.rsplit_once("Signature=").unwrap();
    req.headers.insert(
        "authorization",
        HeaderValue::from_str(&format!("{head}Signature=zz-not-hex")).unwrap(),
    );
    assert_eq!(
        code_of(verify(&req, SECRET)),
        code::SIGNATURE_DOES_NOT_MATCH
    );

    let mut req = vectors().swap_remove(5);
    let raw: String = req
        .query
        .iter()
        .map(|(n, v)| {
            let v = if n == "Signature" { "!!!" } else { v };
            format!("{}={}", percent_encode(n), percent_encode(v))
        })
        .collect::<Vec<_>>()
        .join("&");
    req.set_query(&raw);
    assert_eq!(
        code_of(verify(&req, SECRET)),
        code::SIGNATURE_DOES_NOT_MATCH
    );
}

#[test]
fn v1_requires_its_parameters() {
    let base = vectors().swap_remove(5);
    let raw_without = |name: &str| -> String {
        base.query
            .iter()
            .filter(|(n, _)| *n != name)
            .map(|(n, v)| format!("{}={}", percent_encode(n), percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    };
    for name in [
        "Signature",
        "AccessKeyId",
        "Timestamp",
        "SignatureNonce",
        "Action",
    ] {
        let mut req = vectors().swap_remove(5);
        req.set_query(&raw_without(name));
        assert_eq!(
            code_of(verify(&req, SECRET)),
            format!("MissingParameter.{name}")
        );
    }
    let mut req = vectors().swap_remove(5);
    req.set_query(&format!(
        "{}&SignatureMethod=HMAC-SHA256",
        raw_without("SignatureMethod")
    ));
    assert_eq!(
        code_of(verify(&req, SECRET)),
        "InvalidParameter.SignatureMethod"
    );
}

#[test]
fn v3_requires_its_headers() {
    let mut req = vectors().swap_remove(1);
    req.headers.remove("x-acs-signature-nonce");
    assert_eq!(code_of(verify(&req, SECRET)), code::MISSING_PARAMETER);
}
