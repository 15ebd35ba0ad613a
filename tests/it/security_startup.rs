//! Start-up refusals: off loopback, no plaintext and no anonymous callers
//! unless `--insecure`. Nothing here sends a packet anywhere: the refusals
//! happen before binding, or on a listener bound to 0.0.0.0:0 that nobody
//! connects to.

use std::{process::Command, time::Duration};

use crate::support::secure::{Ca, Files, token_line, write_tls};
use sslvpn_gateway::{
    config::ServeConfig,
    security::{SecurityConfig, SecurityError},
    server::{self, ServeError},
};
use tokio::net::TcpListener;

fn base() -> ServeConfig {
    ServeConfig {
        cloud: sslvpn_gateway::cloud::CloudConfig {
            endpoint: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        },
        credentials: sslvpn_gateway::config::CredentialSource::Static(
            sslvpn_gateway::cloud::Credentials::new("test-key-id", "test-key-secret"),
        ),
        ..ServeConfig::default()
    }
}

async fn start_on_any_address(
    security: SecurityConfig,
) -> Result<server::ServerHandle, ServeError> {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    server::start(ServeConfig { security, ..base() }, listener).await
}

#[tokio::test]
async fn an_exposed_listener_needs_tls_and_authentication() {
    let files = Files::new();
    let ca = Ca::new("startup CA");
    let tls = write_tls(&files, &ca.server(), None);
    let tokens = files.write(
        "tokens",
        &token_line("alice", "alice-token-0123456789abcdef"),
    );

    let cases = [
        (
            SecurityConfig::default(),
            "in plaintext and without authentication",
        ),
        (
            SecurityConfig {
                tls: Some(tls.clone()),
                ..SecurityConfig::default()
            },
            "without authentication",
        ),
        (
            SecurityConfig {
                tokens_file: Some(tokens.clone()),
                ..SecurityConfig::default()
            },
            "in plaintext",
        ),
    ];
    for (security, missing) in cases {
        let err = match start_on_any_address(security.clone()).await {
            Ok(_) => panic!("started without {missing}"),
            Err(err) => err,
        };
        assert!(
            matches!(err, ServeError::Security(SecurityError::Exposed { .. })),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(missing) && text.contains("--insecure"),
            "{text}"
        );
        // The same, said out loud, starts.
        let handle = start_on_any_address(SecurityConfig {
            insecure: true,
            ..security
        })
        .await
        .unwrap();
        handle.shutdown().await.unwrap();
    }
    // TLS and authentication: starts without --insecure.
    let handle = start_on_any_address(SecurityConfig {
        tls: Some(tls),
        tokens_file: Some(tokens),
        ..SecurityConfig::default()
    })
    .await
    .unwrap();
    handle.shutdown().await.unwrap();
}

#[tokio::test]
async fn run_refuses_before_binding() {
    // 192.0.2.1 (TEST-NET-1) is on no interface here: had the check come
    // after the bind, this would fail with a bind error instead.
    let config = ServeConfig {
        listen: "192.0.2.1:50051".parse().unwrap(),
        ..base()
    };
    let err = server::run(config, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServeError::Security(SecurityError::Exposed { .. })),
        "{err:?}"
    );
}

#[tokio::test]
async fn bad_security_files_stop_start_up_with_the_file_named() {
    let files = Files::new();
    let ca = Ca::new("startup CA");
    let server_pair = ca.server();
    let other = ca.server();
    let cases = [
        (
            SecurityConfig {
                policy_file: Some(files.write("p.json", "{}")),
                ..SecurityConfig::default()
            },
            "a policy needs authentication",
        ),
        (
            SecurityConfig {
                tokens_file: Some(files.path("missing-tokens")),
                ..SecurityConfig::default()
            },
            "missing-tokens",
        ),
        (
            SecurityConfig {
                tls: Some(sslvpn_gateway::tls::TlsFiles {
                    cert: files.write("a.pem", &server_pair.cert_pem),
                    key: files.write("b.key", &other.key_pem),
                    client_ca: None,
                    client_cert_optional: false,
                }),
                ..SecurityConfig::default()
            },
            "not usable together",
        ),
        (
            SecurityConfig {
                tls: Some(sslvpn_gateway::tls::TlsFiles {
                    cert: files.write("c.pem", &server_pair.cert_pem),
                    key: files.write("empty.key", ""),
                    client_ca: None,
                    client_cert_optional: false,
                }),
                ..SecurityConfig::default()
            },
            "empty.key holds no private key",
        ),
    ];
    for (security, expected) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let err = match server::start(ServeConfig { security, ..base() }, listener).await {
            Ok(_) => panic!("started despite: {expected}"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(expected), "{err}");
    }
}

#[test]
fn the_binary_says_why_and_exits() {
    for (args, missing) in [
        (vec![], "in plaintext and without authentication"),
        (vec!["--auth-tokens", "/nonexistent/tokens"], "in plaintext"),
    ] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_sslvpn-gateway"));
        child
            .args([
                "serve",
                "--listen",
                "0.0.0.0:50051",
                "--endpoint",
                "http://127.0.0.1:9",
            ])
            .args(&args)
            .env("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id")
            .env("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret")
            .env_remove("SSLVPN_INSECURE");
        let output = run_bounded(child, Duration::from_secs(30));
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("refusing to listen on 0.0.0.0:50051")
                && stderr.contains(missing)
                && stderr.contains("--insecure"),
            "{stderr}"
        );
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(!stdout.contains("gateway listening"), "{stdout}");
    }
}

/// Runs a command that should exit by itself, killing it if it does not.
fn run_bounded(mut command: Command, limit: Duration) -> std::process::Output {
    let child = command
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let id = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(output) => output.unwrap(),
        Err(_) => {
            let _ = Command::new("kill").arg(id.to_string()).status();
            panic!("the gateway did not exit within {limit:?}");
        }
    }
}
