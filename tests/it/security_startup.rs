//! Start-up refusals: off loopback, no plaintext and no anonymous callers
//! unless `--insecure`. Nothing here sends a packet anywhere: the refusals
//! happen before binding, or on a listener bound to 0.0.0.0:0 that nobody
//! connects to.

use sslvpn_gateway::{
    access::{AccessConfig, AccessError},
    server::config::ServeConfig,
    server::{self, ServeError},
};
use tokio::net::TcpListener;

use crate::support::{
    Files,
    harness::offline_config,
    procs,
    secure::{Ca, token_line, write_tls},
};

async fn start_on_any_address(security: AccessConfig) -> Result<server::ServerHandle, ServeError> {
    let listener = TcpListener::bind("0.0.0.0:0").await.unwrap();
    server::start(
        ServeConfig {
            security,
            ..offline_config()
        },
        listener,
    )
    .await
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
            AccessConfig::default(),
            "in plaintext and without authentication",
        ),
        (
            AccessConfig {
                tls: Some(tls.clone()),
                ..AccessConfig::default()
            },
            "without authentication",
        ),
        (
            AccessConfig {
                tokens_file: Some(tokens.clone()),
                ..AccessConfig::default()
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
            matches!(err, ServeError::Access(AccessError::Exposed { .. })),
            "{err:?}"
        );
        let text = err.to_string();
        assert!(
            text.contains(missing) && text.contains("--insecure"),
            "{text}"
        );
        // The same, said out loud, starts.
        let handle = start_on_any_address(AccessConfig {
            insecure: true,
            ..security
        })
        .await
        .unwrap();
        handle.shutdown().await.unwrap();
    }
    // TLS and authentication: starts without --insecure.
    let handle = start_on_any_address(AccessConfig {
        tls: Some(tls),
        tokens_file: Some(tokens),
        ..AccessConfig::default()
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
        ..offline_config()
    };
    let err = server::run(config, std::future::pending())
        .await
        .unwrap_err();
    assert!(
        matches!(err, ServeError::Access(AccessError::Exposed { .. })),
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
            AccessConfig {
                policy_file: Some(files.write("p.json", "{}")),
                ..AccessConfig::default()
            },
            "a policy needs authentication",
        ),
        (
            AccessConfig {
                tokens_file: Some(files.path("missing-tokens")),
                ..AccessConfig::default()
            },
            "missing-tokens",
        ),
        (
            AccessConfig {
                tls: Some(sslvpn_gateway::access::tls::TlsFiles {
                    cert: files.write("a.pem", &server_pair.cert_pem),
                    key: files.write("b.key", &other.key_pem),
                    client_ca: None,
                    client_cert_optional: false,
                }),
                ..AccessConfig::default()
            },
            "not usable together",
        ),
        (
            AccessConfig {
                tls: Some(sslvpn_gateway::access::tls::TlsFiles {
                    cert: files.write("c.pem", &server_pair.cert_pem),
                    key: files.write("empty.key", ""),
                    client_ca: None,
                    client_cert_optional: false,
                }),
                ..AccessConfig::default()
            },
            "empty.key holds no private key",
        ),
    ];
    for (security, expected) in cases {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = ServeConfig {
            security,
            ..offline_config()
        };
        let err = match server::start(config, listener).await {
            Ok(_) => panic!("started despite: {expected}"),
            Err(err) => err.to_string(),
        };
        assert!(err.contains(expected), "{err}");
    }
}

#[tokio::test]
async fn the_binary_says_why_and_exits() {
    for (args, missing) in [
        (vec![], "in plaintext and without authentication"),
        (vec!["--auth-tokens", "/nonexistent/tokens"], "in plaintext"),
    ] {
        let mut all = vec![
            "serve",
            "--listen",
            "0.0.0.0:50051",
            "--endpoint",
            "http://127.0.0.1:9",
        ];
        all.extend(args);
        // The environment is cleared, SSLVPN_INSECURE included.
        let run = procs::run(
            &all,
            &[
                ("ALIBABA_CLOUD_ACCESS_KEY_ID", "test-key-id"),
                ("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "test-key-secret"),
            ],
        )
        .await;
        assert_ne!(run.code, 0, "{run:?}");
        assert!(
            run.stderr.contains("refusing to listen on 0.0.0.0:50051")
                && run.stderr.contains(missing)
                && run.stderr.contains("--insecure"),
            "{}",
            run.stderr
        );
        assert!(!run.stdout.contains("gateway listening"), "{}", run.stdout);
    }
}
