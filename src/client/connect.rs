//! Reaching a gateway: addresses, TLS, the bearer token, and trying the
//! next address when one does not answer.
//!
//! Everything the user typed is checked once, before any call, so a typo in
//! a file name or an address is "bad input" (exit code 2), not a network
//! failure. Certificates are read from PEM files; there are deliberately no
//! bundled public roots: gateways sit behind private CAs, so `--ca-cert` is
//! the one way to say whom to trust.

use std::{future::Future, path::Path, time::Duration};

use tonic::{
    Status,
    metadata::{Ascii, MetadataValue},
    service::{Interceptor, interceptor::InterceptedService},
    transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity},
};

use super::{ConnectArgs, Failure};
use crate::pb::ssl_vpn_service_client::SslVpnServiceClient;

/// The generated client, with the token interceptor in front.
pub type GatewayClient = SslVpnServiceClient<InterceptedService<Channel, BearerToken>>;

/// Adds `authorization: Bearer TOKEN` to every call (when a token is set).
#[derive(Clone, Debug, Default)]
pub struct BearerToken(Option<MetadataValue<Ascii>>);

impl BearerToken {
    /// A token from the command line; refused when it cannot be a header.
    pub fn new(token: Option<&str>) -> Result<Self, Failure> {
        let Some(token) = token.map(str::trim).filter(|t| !t.is_empty()) else {
            return Ok(Self(None));
        };
        let mut value = MetadataValue::try_from(format!("Bearer {token}")).map_err(|_| {
            Failure::Usage("--token must be printable ASCII without line breaks".to_owned())
        })?;
        // Keeps it out of debug output.
        value.set_sensitive(true);
        Ok(Self(Some(value)))
    }
}

impl Interceptor for BearerToken {
    fn call(&mut self, mut request: tonic::Request<()>) -> Result<tonic::Request<()>, Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

/// The checked connection settings: one endpoint per address.
#[derive(Clone, Debug)]
pub struct Connector {
    addrs: Vec<String>,
    endpoints: Vec<Endpoint>,
    token: BearerToken,
    rpc_timeout: Duration,
}

impl Connector {
    pub fn new(args: &ConnectArgs) -> Result<Self, Failure> {
        let addrs: Vec<String> = args
            .addrs
            .iter()
            .map(|a| a.trim().to_owned())
            .filter(|a| !a.is_empty())
            .collect();
        if addrs.is_empty() {
            return Err(Failure::Usage("--addr names no gateway".to_owned()));
        }
        let tls = tls_config(args)?;
        let mut endpoints = Vec::with_capacity(addrs.len());
        for addr in &addrs {
            let uri = uri(addr, tls.is_some())?;
            let mut endpoint = Endpoint::from_shared(uri.clone())
                .map_err(|e| Failure::Usage(format!("--addr {addr:?}: {e}")))?
                .connect_timeout(args.connect_timeout)
                // A replica that vanishes without a goodbye (a killed pod)
                // is noticed within seconds, so a watch can resume.
                .http2_keep_alive_interval(Duration::from_secs(10))
                .keep_alive_timeout(Duration::from_secs(5))
                .keep_alive_while_idle(true);
            if let Some(tls) = &tls {
                endpoint = endpoint
                    .tls_config(tls.clone())
                    .map_err(|e| Failure::Usage(format!("TLS settings for {addr}: {e}")))?;
            }
            endpoints.push(endpoint);
        }
        Ok(Self {
            addrs,
            endpoints,
            token: BearerToken::new(args.token.as_deref())?,
            rpc_timeout: args.rpc_timeout,
        })
    }

    pub fn rpc_timeout(&self) -> Duration {
        self.rpc_timeout
    }

    /// The address at `index`, counting round the list.
    pub fn addr(&self, index: usize) -> &str {
        &self.addrs[index % self.addrs.len()]
    }

    /// Connects to the address at `index` (round the list).
    pub async fn connect(&self, index: usize) -> Result<GatewayClient, Failure> {
        let i = index % self.endpoints.len();
        let channel = self.endpoints[i].connect().await.map_err(|e| {
            Failure::Unreachable(format!(
                "cannot connect to {}: {}",
                self.addrs[i],
                chain(&e)
            ))
        })?;
        Ok(SslVpnServiceClient::with_interceptor(
            channel,
            self.token.clone(),
        ))
    }

    /// Runs a unary call on the first address that answers. An address that
    /// cannot be reached, or answers UNAVAILABLE, passes the call to the next
    /// (safe for a modify: it keeps its client token).
    pub async fn unary<T, F, Fut>(&self, mut call: F) -> Result<T, Failure>
    where
        F: FnMut(GatewayClient) -> Fut,
        Fut: Future<Output = Result<tonic::Response<T>, Status>>,
    {
        let mut last = None;
        for index in 0..self.endpoints.len() {
            let client = match self.connect(index).await {
                Ok(c) => c,
                Err(failure) => {
                    last = Some(failure);
                    continue;
                }
            };
            match call(client).await {
                Ok(reply) => return Ok(reply.into_inner()),
                Err(status) if status.code() == tonic::Code::Unavailable => {
                    last = Some(Failure::Status(status));
                }
                Err(status) => return Err(Failure::Status(status)),
            }
        }
        Err(last.unwrap_or_else(|| Failure::Unreachable("no gateway address".to_owned())))
    }
}

/// `HOST:PORT` gets a scheme; an explicit one must agree with the TLS flags.
fn uri(addr: &str, tls: bool) -> Result<String, Failure> {
    match addr.split_once("://") {
        None => Ok(format!("{}://{addr}", if tls { "https" } else { "http" })),
        Some(("http", _)) if tls => Err(Failure::Usage(format!(
            "--addr {addr}: TLS flags were given; use https:// (or no scheme)"
        ))),
        Some(("https", _)) if !tls => Err(Failure::Usage(format!(
            "--addr {addr}: https needs --ca-cert (the CA that signed the gateway's certificate)"
        ))),
        Some(("http" | "https", _)) => Ok(addr.to_owned()),
        Some((scheme, _)) => Err(Failure::Usage(format!(
            "--addr {addr}: unknown scheme {scheme:?} (use http:// or https://)"
        ))),
    }
}

/// The TLS settings, or None for plaintext.
fn tls_config(args: &ConnectArgs) -> Result<Option<ClientTlsConfig>, Failure> {
    let wants_tls = args.ca_cert.is_some()
        || args.client_cert.is_some()
        || args.client_key.is_some()
        || args.tls_server_name.is_some();
    if !wants_tls {
        return Ok(None);
    }
    let Some(ca) = &args.ca_cert else {
        return Err(Failure::Usage(
            "TLS needs --ca-cert (the CA that signed the gateway's certificate)".to_owned(),
        ));
    };
    let mut tls =
        ClientTlsConfig::new().ca_certificate(Certificate::from_pem(read_pem(ca, "--ca-cert")?));
    match (&args.client_cert, &args.client_key) {
        (Some(cert), Some(key)) => {
            tls = tls.identity(Identity::from_pem(
                read_pem(cert, "--client-cert")?,
                read_pem(key, "--client-key")?,
            ));
        }
        (None, None) => {}
        _ => {
            return Err(Failure::Usage(
                "--client-cert and --client-key go together".to_owned(),
            ));
        }
    }
    if let Some(name) = &args.tls_server_name {
        tls = tls.domain_name(name.clone());
    }
    Ok(Some(tls))
}

fn read_pem(path: &Path, flag: &str) -> Result<Vec<u8>, Failure> {
    let bytes = std::fs::read(path)
        .map_err(|e| Failure::Usage(format!("{flag} {}: {e}", path.display())))?;
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(Failure::Usage(format!(
            "{flag} {}: not a PEM file",
            path.display()
        )));
    }
    Ok(bytes)
}

/// An error with its causes: tonic's own message alone is "transport error".
fn chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        // hyper repeats its wrapper's words ("tcp connect error: tcp connect error").
        let text = s.to_string();
        if !out.ends_with(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_get_the_scheme_the_tls_flags_imply() {
        assert_eq!(uri("h:1", false).unwrap(), "http://h:1");
        assert_eq!(uri("h:1", true).unwrap(), "https://h:1");
        assert_eq!(uri("http://h:1", false).unwrap(), "http://h:1");
        assert!(matches!(uri("http://h:1", true), Err(Failure::Usage(_))));
        assert!(matches!(uri("https://h:1", false), Err(Failure::Usage(_))));
        assert!(matches!(uri("ftp://h:1", false), Err(Failure::Usage(_))));
    }

    #[test]
    fn a_token_with_a_line_break_is_bad_input() {
        assert!(matches!(
            BearerToken::new(Some("abc\ndef")),
            Err(Failure::Usage(_))
        ));
        assert!(BearerToken::new(Some("  ")).unwrap().0.is_none());
        let mut t = BearerToken::new(Some("s3cret")).unwrap();
        let req = t.call(tonic::Request::new(())).unwrap();
        assert_eq!(
            req.metadata().get("authorization").unwrap(),
            "Bearer s3cret"
        );
    }
}
