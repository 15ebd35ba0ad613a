//! The client's TLS and token flags against a gateway served over mutual
//! TLS with a bearer-token check (built here from the service and tonic's
//! own TLS, so the client's side is tested whatever the server's transport
//! options are). Certificates come from a throwaway CA made per test.

mod harness;
mod procs;

use std::{path::Path, sync::Arc};

use harness::*;
use procs::client;
use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};
use sslvpn_gateway::{
    cloud::{StaticCredentials, VpcClient},
    config::CredentialSource,
    emulator::{EmulatorConfig, EmulatorHandle},
    pb::ssl_vpn_service_server::SslVpnServiceServer,
    service::SslVpnGateway,
    watch::WatchHub,
};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;
use tonic::{
    Request, Status,
    transport::{Certificate, Identity, Server, ServerTlsConfig},
};

const TOKEN: &str = "s3cret-token";

/// A CA, and PEM files it signed: the server's (for `localhost`) and a client's.
struct Pki {
    dir: std::path::PathBuf,
    ca_pem: String,
    server: (String, String),
}

fn issue(name: &str, issuer: &Issuer<'_, KeyPair>) -> (String, String) {
    let key = KeyPair::generate().unwrap();
    let cert = CertificateParams::new(vec![name.to_owned()])
        .unwrap()
        .signed_by(&key, issuer)
        .unwrap();
    (cert.pem(), key.serialize_pem())
}

fn new_ca() -> (String, Issuer<'static, KeyPair>) {
    let key = KeyPair::generate().unwrap();
    let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let cert = params.self_signed(&key).unwrap();
    (cert.pem(), Issuer::new(params, key))
}

fn pki(test: &str) -> Pki {
    let dir = std::env::temp_dir().join(format!("sslvpn-client-tls-{test}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (ca_pem, issuer) = new_ca();
    let server = issue("localhost", &issuer);
    let (client_cert, client_key) = issue("sslvpn-client", &issuer);
    let (other_ca, _) = new_ca();
    for (file, pem) in [
        ("ca.pem", &ca_pem),
        ("client.pem", &client_cert),
        ("client.key", &client_key),
        ("other-ca.pem", &other_ca),
    ] {
        std::fs::write(dir.join(file), pem).unwrap();
    }
    Pki {
        dir,
        ca_pem,
        server,
    }
}

fn path(dir: &Path, file: &str) -> String {
    dir.join(file).display().to_string()
}

/// The gateway service over mutual TLS, refusing calls without the token.
async fn tls_gateway(emulator: &EmulatorHandle, pki: &Pki) -> String {
    let config = gateway_config(emulator);
    let CredentialSource::Static(credentials) = config.credentials.clone() else {
        unreachable!("the harness uses the demo key");
    };
    let cloud = VpcClient::new(
        config.cloud.clone(),
        Arc::new(StaticCredentials::new(credentials)),
    )
    .unwrap();
    let shutdown = CancellationToken::new();
    let hub = WatchHub::new(cloud.clone(), config.poll.clone(), shutdown.clone());
    let gateway = SslVpnGateway::new(cloud, hub, config.watch.clone(), shutdown);
    let check = |req: Request<()>| match req.metadata().get("authorization") {
        Some(v) if v == format!("Bearer {TOKEN}").as_str() => Ok(req),
        _ => Err(Status::unauthenticated("a valid bearer token is required")),
    };
    let tls = ServerTlsConfig::new()
        .identity(Identity::from_pem(&pki.server.0, &pki.server.1))
        .client_ca_root(Certificate::from_pem(&pki.ca_pem));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let router = Server::builder()
        .tls_config(tls)
        .unwrap()
        .add_service(SslVpnServiceServer::with_interceptor(gateway, check));
    tokio::spawn(router.serve_with_incoming(TcpListenerStream::new(listener)));
    format!("127.0.0.1:{port}")
}

#[tokio::test]
async fn ca_client_certificate_and_token_reach_the_gateway() {
    let emulator = start_emulator(EmulatorConfig::fast()).await;
    let pki = pki("ok");
    let addr = tls_gateway(&emulator, &pki).await;
    let dir = &pki.dir;
    let tls = |ca: &str| {
        vec![
            "--ca-cert".to_owned(),
            path(dir, ca),
            "--client-cert".to_owned(),
            path(dir, "client.pem"),
            "--client-key".to_owned(),
            path(dir, "client.key"),
            "--tls-server-name".to_owned(),
            "localhost".to_owned(),
        ]
    };
    let status = ["status", "--region", REGION, "--server", SERVER];

    let mut args: Vec<String> = tls("ca.pem");
    args.extend(["--token", TOKEN].map(String::from));
    args.extend(status.map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = client(&addr, &argv).await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(SERVER), "{}", run.stdout);

    // The token is what the gateway checks: without it, UNAUTHENTICATED.
    let mut args: Vec<String> = tls("ca.pem");
    args.extend(status.map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = client(&addr, &argv).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with("error: UNAUTHENTICATED"),
        "{}",
        run.stderr
    );

    // A CA that did not sign the gateway's certificate: no connection.
    let mut args: Vec<String> = tls("other-ca.pem");
    args.extend(["--token", TOKEN].map(String::from));
    args.extend(status.map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = client(&addr, &argv).await;
    assert_eq!(run.code, 4, "{run:?}");

    // Plain http to a TLS port is refused locally when TLS flags are set.
    let mut args: Vec<String> = tls("ca.pem");
    args.extend(status.map(String::from));
    let argv: Vec<&str> = args.iter().map(String::as_str).collect();
    let run = client(&format!("http://{addr}"), &argv).await;
    assert_eq!(run.code, 2, "{run:?}");

    let _ = std::fs::remove_dir_all(dir);
}
