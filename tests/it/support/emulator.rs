//! A small signing client for the emulator's integration tests, written
//! from the wire reference (V3 and V1), plus raw-socket helpers for what a
//! well-behaved client never sends.

use std::time::{Duration, SystemTime};

use base64::Engine;
use hmac::{Hmac, Mac};
use serde_json::Value;
use sha1::Sha1;
use sha2::{Digest, Sha256};
use sslvpn_gateway::emulator::{
    DEMO_ACCESS_KEY_ID, DEMO_ACCESS_KEY_SECRET, EmulatorConfig, EmulatorHandle,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{
    harness::{REGION, start_emulator},
    wire::{canonical, percent_encode},
};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Algo {
    V3,
    V1,
}

/// One API call, before signing.
#[derive(Clone, Debug)]
pub struct Call {
    pub method: &'static str,
    pub action: String,
    pub algo: Algo,
    pub query: Vec<(String, String)>,
    pub form: Vec<(String, String)>,
    pub nonce: Option<String>,
    pub timestamp: Option<SystemTime>,
    pub key_id: String,
    pub secret: String,
    pub token: Option<String>,
}

impl Call {
    pub fn new(action: &str, params: &[(&str, &str)]) -> Self {
        Self {
            method: "POST",
            action: action.into(),
            algo: Algo::V3,
            query: params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            form: Vec::new(),
            nonce: None,
            timestamp: None,
            key_id: DEMO_ACCESS_KEY_ID.into(),
            secret: DEMO_ACCESS_KEY_SECRET.into(),
            token: None,
        }
    }

    pub fn algo(mut self, algo: Algo) -> Self {
        self.algo = algo;
        self
    }

    pub fn get(mut self) -> Self {
        self.method = "GET";
        self
    }

    /// Moves these parameters into a form body.
    pub fn in_form(mut self, names: &[&str]) -> Self {
        let (form, query): (Vec<_>, Vec<_>) = self
            .query
            .into_iter()
            .partition(|(k, _)| names.contains(&k.as_str()));
        self.query = query;
        self.form = form;
        self
    }

    pub fn key(mut self, id: &str, secret: &str) -> Self {
        self.key_id = id.into();
        self.secret = secret.into();
        self
    }

    pub fn token(mut self, token: &str) -> Self {
        self.token = Some(token.into());
        self
    }

    pub fn nonce(mut self, nonce: &str) -> Self {
        self.nonce = Some(nonce.into());
        self
    }

    pub fn at(mut self, t: SystemTime) -> Self {
        self.timestamp = Some(t);
        self
    }
}

/// A signed request: the raw target, headers and body.
pub struct Signed {
    pub method: &'static str,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

pub fn sign(call: &Call, host: &str) -> Signed {
    let nonce = call
        .nonce
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
    let date = humantime::format_rfc3339_seconds(call.timestamp.unwrap_or_else(SystemTime::now))
        .to_string();
    let body = canonical(&call.form).into_bytes();
    let mut headers: Vec<(String, String)> = Vec::new();
    if !call.form.is_empty() {
        headers.push((
            "content-type".into(),
            "application/x-www-form-urlencoded".into(),
        ));
    }
    match call.algo {
        Algo::V3 => {
            let query = canonical(&call.query);
            let hash = hex::encode(Sha256::digest(&body));
            headers.extend([
                ("host".to_owned(), host.to_owned()),
                ("x-acs-action".into(), call.action.clone()),
                ("x-acs-version".into(), "2016-04-28".into()),
                ("x-acs-date".into(), date),
                ("x-acs-signature-nonce".into(), nonce),
                ("x-acs-content-sha256".into(), hash.clone()),
            ]);
            if let Some(token) = &call.token {
                headers.push(("x-acs-security-token".into(), token.clone()));
                headers.push(("x-acs-accesskey-id".into(), call.key_id.clone()));
            }
            headers.sort();
            let canonical_headers: String = headers
                .iter()
                .map(|(k, v)| format!("{k}:{}\n", v.trim()))
                .collect();
            let signed: Vec<&str> = headers.iter().map(|(k, _)| k.as_str()).collect();
            let signed = signed.join(";");
            let request = format!(
                "{}\n/\n{query}\n{canonical_headers}\n{signed}\n{hash}",
                call.method
            );
            let to_sign = format!(
                "ACS3-HMAC-SHA256\n{}",
                hex::encode(Sha256::digest(request.as_bytes()))
            );
            let mut mac = Hmac::<Sha256>::new_from_slice(call.secret.as_bytes()).unwrap();
            mac.update(to_sign.as_bytes());
            let signature = hex::encode(mac.finalize().into_bytes());
            headers.push((
                "authorization".into(),
                format!(
                    "ACS3-HMAC-SHA256 Credential={},SignedHeaders={signed},Signature={signature}",
                    call.key_id
                ),
            ));
            let target = if query.is_empty() {
                "/".to_owned()
            } else {
                format!("/?{query}")
            };
            Signed {
                method: call.method,
                target,
                headers,
                body,
            }
        }
        Algo::V1 => {
            let mut params = call.query.clone();
            params.extend([
                ("Action".to_owned(), call.action.clone()),
                ("Version".into(), "2016-04-28".into()),
                ("Format".into(), "JSON".into()),
                ("Timestamp".into(), date),
                ("SignatureNonce".into(), nonce),
                ("SignatureMethod".into(), "HMAC-SHA1".into()),
                ("SignatureVersion".into(), "1.0".into()),
                ("AccessKeyId".into(), call.key_id.clone()),
            ]);
            if let Some(token) = &call.token {
                params.push(("SecurityToken".into(), token.clone()));
            }
            let mut all = params.clone();
            all.extend(call.form.iter().cloned());
            let to_sign = format!("{}&%2F&{}", call.method, percent_encode(&canonical(&all)));
            let mut mac =
                Hmac::<Sha1>::new_from_slice(format!("{}&", call.secret).as_bytes()).unwrap();
            mac.update(to_sign.as_bytes());
            let signature =
                base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
            params.push(("Signature".into(), signature));
            headers.push(("host".into(), host.to_owned()));
            Signed {
                method: call.method,
                target: format!("/?{}", canonical(&params)),
                headers,
                body,
            }
        }
    }
}

/// A raw HTTP answer.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub json: Value,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn code(&self) -> &str {
        self.json["Code"].as_str().unwrap_or("")
    }
}

/// Sends raw bytes on a fresh connection and reads one response; `Err` when
/// the connection fails before a complete response.
pub async fn raw(addr: std::net::SocketAddr, bytes: &[u8]) -> std::io::Result<Answer> {
    let mut stream = tokio::net::TcpStream::connect(addr).await?;
    stream.write_all(bytes).await?;
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf))
        .await
        .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "no answer"))??;
    parse_answer(&buf)
}

fn parse_answer(buf: &[u8]) -> std::io::Result<Answer> {
    let text = String::from_utf8_lossy(buf);
    let (head, body) = text.split_once("\r\n\r\n").ok_or_else(|| {
        std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "no complete response")
    })?;
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| l.split_once(": "))
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect();
    Ok(Answer {
        status,
        headers,
        json: serde_json::from_str(body).unwrap_or(Value::Null),
    })
}

/// Serialises a signed request as HTTP/1.1 with `Connection: close`.
pub fn to_bytes(req: &Signed) -> Vec<u8> {
    let mut out = format!("{} {} HTTP/1.1\r\n", req.method, req.target);
    for (k, v) in &req.headers {
        out.push_str(&format!("{k}: {v}\r\n"));
    }
    out.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n",
        req.body.len()
    ));
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&req.body);
    bytes
}

/// A running emulator and a way to call it.
pub struct Cloud {
    pub handle: EmulatorHandle,
}

impl Cloud {
    pub async fn start(config: EmulatorConfig) -> Self {
        Self {
            handle: start_emulator(config).await,
        }
    }

    pub async fn fast() -> Self {
        Self::start(EmulatorConfig::fast()).await
    }

    pub fn host(&self) -> String {
        self.handle.endpoint()
    }

    /// Signs and sends; `Err` when the connection fails without an answer.
    pub async fn try_call(&self, call: &Call) -> std::io::Result<Answer> {
        raw(self.handle.addr(), &to_bytes(&sign(call, &self.host()))).await
    }

    pub async fn call(&self, call: &Call) -> Answer {
        self.try_call(call).await.unwrap()
    }

    pub async fn gateway_status(&self, id: &str) -> String {
        let a = self
            .call(&Call::new(
                "DescribeVpnGateway",
                &[("RegionId", REGION), ("VpnGatewayId", id)],
            ))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.json["Status"].as_str().unwrap().to_owned()
    }

    pub async fn server(&self, id: &str) -> Value {
        let a = self
            .call(&Call::new(
                "DescribeSslVpnServers",
                &[("RegionId", REGION), ("SslVpnServerId", id)],
            ))
            .await;
        assert_eq!(a.status, 200, "{a:?}");
        a.json["SslVpnServers"]["SslVpnServer"][0].clone()
    }

    /// An admin API request with an optional JSON body.
    pub async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let req = format!(
            "{method} /_emulator{path} HTTP/1.1\r\nhost: {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            self.host(),
            body.len()
        );
        raw(self.handle.addr(), req.as_bytes()).await.unwrap()
    }
}
