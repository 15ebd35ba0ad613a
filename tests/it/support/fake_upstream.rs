//! A fake VPC endpoint for the client tests, on 127.0.0.1 only.
//!
//! It checks every request's signature with compact code of its own,
//! written from the wire reference's prose (the query encoding is
//! `support::wire`'s; it never calls the crate's signer), so a signer bug
//! cannot hide behind a matching verifier bug. It records each
//! request and answers from a script: scripted replies first, in order,
//! then a default. A bad signature is answered like the cloud would
//! (`400 SignatureDoesNotMatch`), and so is a reused nonce.

use std::{
    collections::{HashMap, HashSet, VecDeque},
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use axum::{
    Router,
    body::Bytes,
    extract::State,
    http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Uri},
    response::{IntoResponse, Response},
};
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use super::{
    serve_http,
    wire::{canonical, decode_query, percent_encode},
};

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    pub fn ok(body: serde_json::Value) -> Self {
        Self::raw(200, body.to_string())
    }

    /// The cloud's error body.
    pub fn error(status: u16, code: &str, request_id: &str) -> Self {
        Self::ok(serde_json::json!({
            "RequestId": request_id,
            "HostId": "vpc.aliyuncs.com",
            "Code": code,
            "Message": format!("fake failure {code}"),
            "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
        }))
        .with_status(status)
    }

    pub fn raw(status: u16, body: impl Into<String>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
            delay: Duration::ZERO,
        }
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = status;
        self
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    pub fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// What the fake saw.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub method: String,
    /// `x-acs-action` (V3) or the `Action` parameter (V1).
    pub action: String,
    /// The decoded query parameters, in the order sent.
    pub params: Vec<(String, String)>,
    pub raw_query: String,
    /// Lowercase names.
    pub headers: HashMap<String, String>,
    /// `None` when the signature verified; else why not.
    pub signature_problem: Option<String>,
    pub nonce: String,
    pub at: Instant,
}

impl Recorded {
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).map(String::as_str)
    }
}

struct Shared {
    secret: String,
    script: Mutex<VecDeque<Reply>>,
    default: Mutex<Reply>,
    requests: Mutex<Vec<Recorded>>,
    nonces: Mutex<HashSet<String>>,
}

pub struct FakeUpstream {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FakeUpstream {
    /// Starts on 127.0.0.1 with an OS-chosen port; checks signatures made
    /// with `secret`.
    pub async fn start(secret: &str) -> Self {
        let shared = Arc::new(Shared {
            secret: secret.to_owned(),
            script: Mutex::new(VecDeque::new()),
            default: Mutex::new(Reply::error(500, "NoScriptedReply", "FAKE-NONE")),
            requests: Mutex::new(Vec::new()),
            nonces: Mutex::new(HashSet::new()),
        });
        let addr = serve_http(Router::new().fallback(handle).with_state(shared.clone())).await;
        Self { addr, shared }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Queues replies, answered in order.
    pub fn push(&self, replies: impl IntoIterator<Item = Reply>) {
        self.shared.script.lock().unwrap().extend(replies);
    }

    /// The answer once the script is used up.
    pub fn set_default(&self, reply: Reply) {
        *self.shared.default.lock().unwrap() = reply;
    }

    pub fn requests(&self) -> Vec<Recorded> {
        self.shared.requests.lock().unwrap().clone()
    }
}

async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let raw_query = uri.query().unwrap_or("").to_owned();
    let params = decode_query(&raw_query);
    let header_map: HashMap<String, String> = headers
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    let is_v1 = params.iter().any(|(k, _)| k == "Signature");
    let verdict = if is_v1 {
        verify_v1(method.as_str(), &params, &shared.secret)
    } else {
        verify_v3(
            method.as_str(),
            &raw_query,
            &header_map,
            &body,
            &shared.secret,
        )
    };
    let nonce = if is_v1 {
        find(&params, "SignatureNonce")
    } else {
        header_map
            .get("x-acs-signature-nonce")
            .cloned()
            .unwrap_or_default()
    };
    let action = if is_v1 {
        find(&params, "Action")
    } else {
        header_map.get("x-acs-action").cloned().unwrap_or_default()
    };
    let reused = !shared.nonces.lock().unwrap().insert(nonce.clone());
    shared.requests.lock().unwrap().push(Recorded {
        method: method.to_string(),
        action,
        params,
        raw_query,
        headers: header_map,
        signature_problem: verdict.clone().err(),
        nonce,
        at: Instant::now(),
    });

    if let Err(problem) = verdict {
        return reply(
            Reply::error(400, "SignatureDoesNotMatch", "FAKE-SIG")
                .with_header("x-fake-problem", &problem.replace('\n', " ")),
        );
    }
    if reused {
        return reply(Reply::error(400, "SignatureNonceUsed", "FAKE-NONCE"));
    }
    let next = shared.script.lock().unwrap().pop_front();
    let next = next.unwrap_or_else(|| shared.default.lock().unwrap().clone());
    if !next.delay.is_zero() {
        tokio::time::sleep(next.delay).await;
    }
    reply(next)
}

fn reply(r: Reply) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=utf-8"),
    );
    for (k, v) in &r.headers {
        headers.insert(
            HeaderName::from_bytes(k.as_bytes()).unwrap(),
            HeaderValue::from_str(v).unwrap(),
        );
    }
    (StatusCode::from_u16(r.status).unwrap(), headers, r.body).into_response()
}

fn find(params: &[(String, String)], name: &str) -> String {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_default()
}

fn check_date(date: &str) -> Result<(), String> {
    let t = humantime::parse_rfc3339(date).map_err(|e| format!("bad date {date:?}: {e}"))?;
    let skew = match SystemTime::now().duration_since(t) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > Duration::from_secs(15 * 60) {
        return Err(format!("date {date} is more than 15 minutes off"));
    }
    Ok(())
}

/// ACS3-HMAC-SHA256, per the reference §1.4.
fn verify_v3(
    method: &str,
    raw_query: &str,
    headers: &HashMap<String, String>,
    body: &[u8],
    secret: &str,
) -> Result<(), String> {
    let auth = headers.get("authorization").ok_or("no Authorization")?;
    let rest = auth
        .strip_prefix("ACS3-HMAC-SHA256 ")
        .ok_or("not ACS3-HMAC-SHA256")?;
    let mut parts: HashMap<&str, &str> = HashMap::new();
    for part in rest.split(',') {
        let (k, v) = part.split_once('=').ok_or("malformed Authorization")?;
        parts.insert(k, v);
    }
    let signed = *parts.get("SignedHeaders").ok_or("no SignedHeaders")?;
    let given = *parts.get("Signature").ok_or("no Signature")?;
    let names: Vec<&str> = signed.split(';').collect();
    for required in [
        "host",
        "x-acs-action",
        "x-acs-version",
        "x-acs-date",
        "x-acs-signature-nonce",
        "x-acs-content-sha256",
    ] {
        if !names.contains(&required) {
            return Err(format!("{required} is not signed"));
        }
    }
    if headers.contains_key("x-acs-security-token") && !names.contains(&"x-acs-security-token") {
        return Err("the security token is not signed".into());
    }
    let mut canonical_headers = String::new();
    for name in &names {
        let value = headers
            .get(*name)
            .ok_or(format!("signed header {name} missing"))?;
        canonical_headers.push_str(&format!("{name}:{}\n", value.trim()));
    }
    let payload = hex::encode(Sha256::digest(body));
    if headers.get("x-acs-content-sha256") != Some(&payload) {
        return Err("x-acs-content-sha256 does not match the body".into());
    }
    check_date(headers.get("x-acs-date").map(String::as_str).unwrap_or(""))?;
    let request = format!(
        "{method}\n/\n{}\n{canonical_headers}\n{signed}\n{payload}",
        canonical(&decode_query(raw_query))
    );
    let to_sign = format!(
        "ACS3-HMAC-SHA256\n{}",
        hex::encode(Sha256::digest(request.as_bytes()))
    );
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let expected = hex::encode(mac.finalize().into_bytes());
    if expected == given {
        Ok(())
    } else {
        Err(format!(
            "signature mismatch; canonical request was:\n{request}"
        ))
    }
}

/// HMAC-SHA1, SignatureVersion 1.0, per the reference §1.3.
fn verify_v1(method: &str, params: &[(String, String)], secret: &str) -> Result<(), String> {
    let given = find(params, "Signature");
    for required in [
        "Action",
        "Version",
        "Timestamp",
        "SignatureNonce",
        "AccessKeyId",
    ] {
        if find(params, required).is_empty() {
            return Err(format!("{required} missing"));
        }
    }
    if find(params, "SignatureMethod") != "HMAC-SHA1" || find(params, "SignatureVersion") != "1.0" {
        return Err("not HMAC-SHA1 1.0".into());
    }
    check_date(&find(params, "Timestamp"))?;
    let rest: Vec<(String, String)> = params
        .iter()
        .filter(|(k, _)| k != "Signature")
        .cloned()
        .collect();
    let to_sign = format!("{method}&%2F&{}", percent_encode(&canonical(&rest)));
    let mut mac =
        hmac::Hmac::<sha1::Sha1>::new_from_slice(format!("{secret}&").as_bytes()).unwrap();
    mac.update(to_sign.as_bytes());
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    if expected == given {
        Ok(())
    } else {
        Err(format!("signature mismatch; string to sign was {to_sign}"))
    }
}
