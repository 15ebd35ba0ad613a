//! The client's TLS and token flags against the gateway's own security: TLS
//! with client certificates from a CA, and bearer tokens, so a caller brings
//! either. Certificates come from a throwaway CA made per test.

use sslvpn_gateway::{
    access::AccessConfig,
    emulator::{EmulatorConfig, EmulatorHandle},
    server::ServerHandle,
};

use crate::support::{
    Files,
    harness::*,
    procs::{self, client},
    secure::{Ca, token_line, write_tls},
};

const TOKEN: &str = "netops-7c0ffee5d1e4b0a9e8f7a6b5c4d3e2f1";

/// A gateway that needs TLS and either a client certificate or the token;
/// the handles keep it and its emulator running.
async fn secured(files: &Files, ca: &Ca) -> (EmulatorHandle, ServerHandle, String) {
    let emulator = start_emulator(EmulatorConfig::fast()).await;
    let mut config = gateway_config(&emulator);
    let mut tls = write_tls(files, &ca.server(), Some(ca));
    tls.client_cert_optional = true;
    config.security = AccessConfig {
        tls: Some(tls),
        tokens_file: Some(files.write("tokens", &token_line("netops", TOKEN))),
        ..AccessConfig::default()
    };
    let server = start_server(config).await;
    let addr = format!("127.0.0.1:{}", server.local_addr().port());
    (emulator, server, addr)
}

fn args<'a>(head: &[&'a str], tail: &[&'a str]) -> Vec<&'a str> {
    head.iter().chain(tail).copied().collect()
}

#[tokio::test]
async fn ca_client_certificates_and_tokens_reach_a_secured_gateway() {
    let files = Files::new();
    let ca = Ca::new("test CA");
    let (_emulator, _server, addr) = secured(&files, &ca).await;
    let me = ca.client(None, Some("netops.example"));
    let ca_pem = files.write("ca.pem", &ca.cert_pem);
    let cert = files.write("client.pem", &me.cert_pem);
    let key = files.write("client.key", &me.key_pem);
    let other_ca = files.write("other-ca.pem", &Ca::new("another CA").cert_pem);
    let (ca_pem, cert, key, other_ca) = (
        ca_pem.to_str().unwrap(),
        cert.to_str().unwrap(),
        key.to_str().unwrap(),
        other_ca.to_str().unwrap(),
    );
    let status = ["status", "--region", REGION, "--server", SERVER];

    // A client certificate (mutual TLS), checked against the name localhost.
    let run = client(
        &addr,
        &args(
            &[
                "--ca-cert",
                ca_pem,
                "--client-cert",
                cert,
                "--client-key",
                key,
                "--tls-server-name",
                "localhost",
            ],
            &status,
        ),
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains(SERVER), "{}", run.stdout);

    // A bearer token instead (from the environment variable, as advised).
    let run = procs::run(
        &args(&["client", "--addr", &addr, "--ca-cert", ca_pem], &status),
        &[("SSLVPN_TOKEN", TOKEN)],
    )
    .await;
    assert_eq!(run.code, 0, "{run:?}");

    // Neither, or a wrong token: UNAUTHENTICATED, exit code 1.
    let run = client(&addr, &args(&["--ca-cert", ca_pem], &status)).await;
    assert_eq!(run.code, 1, "{run:?}");
    assert!(
        run.stderr.starts_with("error: UNAUTHENTICATED"),
        "{}",
        run.stderr
    );
    let run = client(
        &addr,
        &args(&["--ca-cert", ca_pem, "--token", "not-the-token"], &status),
    )
    .await;
    assert_eq!(run.code, 1, "{run:?}");

    // A CA that did not sign the gateway's certificate: no connection.
    let run = client(
        &addr,
        &args(&["--ca-cert", other_ca, "--token", TOKEN], &status),
    )
    .await;
    assert_eq!(run.code, 4, "{run:?}");

    // Plain http with TLS flags is refused before any call.
    let run = client(
        &format!("http://{addr}"),
        &args(&["--ca-cert", ca_pem, "--token", TOKEN], &status),
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
    // And so is a certificate without its key.
    let run = client(
        &addr,
        &args(&["--ca-cert", ca_pem, "--client-cert", cert], &status),
    )
    .await;
    assert_eq!(run.code, 2, "{run:?}");
}
