//! TLS (and mTLS) on the gRPC listener, with certificates that reload
//! without dropping a connection.
//!
//! tonic's own `ServerTlsConfig` is fixed when the server is built, so the
//! listener does its own TLS: the transport's accept loop (`server`) hands
//! each TCP connection to a `tokio_rustls::TlsAcceptor` made from the
//! *current* `rustls::ServerConfig` and feeds finished handshakes to tonic
//! as its incoming connections.
//! Reloading (SIGHUP) builds a whole new `ServerConfig` from the files —
//! certificate chain, key, client CA — and swaps it in only if every part
//! loaded: new handshakes use it, established connections keep the session
//! they negotiated, and a bad file leaves the old configuration serving.
//! Everything uses the ring provider explicitly, as the rest of the project
//! does, so no process-wide default provider is needed.
//!
//! Errors name files, never their contents: a key file is secret.

use std::{
    path::{Path, PathBuf},
    sync::{Arc, RwLock},
};

use tokio_rustls::rustls::{
    self, RootCertStore, ServerConfig,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, PrivateKeyDer, UnixTime, pem::PemObject},
    server::{WebPkiClientVerifier, danger::ClientCertVerifier},
};

/// The files TLS is configured from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The server's certificate chain (PEM, leaf first).
    pub cert: PathBuf,
    /// The server's private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
    /// CA certificates (PEM) client certificates must chain to: turns on
    /// mTLS.
    pub client_ca: Option<PathBuf>,
    /// Let clients without a certificate complete the handshake (they
    /// must then bring a bearer token).
    pub client_cert_optional: bool,
}

/// Why TLS could not be configured.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read the {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: String,
        source: std::io::Error,
    },
    #[error("the {what} {path} holds no {expected} in PEM form")]
    Missing {
        what: &'static str,
        path: String,
        expected: &'static str,
    },
    #[error("the {what} {path} is not valid PEM")]
    Pem { what: &'static str, path: String },
    #[error("the client CA file {path} is not usable: {why}")]
    ClientCa { path: String, why: String },
    #[error("the TLS certificate and key are not usable together: {0}")]
    Rustls(String),
}

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.display().to_string(),
        source,
    })
}

/// Every certificate in a PEM file.
fn certificates(what: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(what, path)?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| TlsError::Pem {
            what,
            path: path.display().to_string(),
        })?;
    if certs.is_empty() {
        return Err(TlsError::Missing {
            what,
            path: path.display().to_string(),
            expected: "certificate",
        });
    }
    Ok(certs)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "TLS key file";
    let pem = read(what, path)?;
    // The PEM parser's own messages may quote a line of the file: map them
    // to ours, which quote nothing.
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => TlsError::Missing {
            what,
            path: path.display().to_string(),
            expected: "private key",
        },
        _ => TlsError::Pem {
            what,
            path: path.display().to_string(),
        },
    })
}

/// A server configuration built from the files, with its client
/// certificate verifier: rustls keeps its own private, and a reload needs
/// it to check the certificates of connections already open.
pub struct Loaded {
    config: ServerConfig,
    verifier: Option<Arc<dyn ClientCertVerifier>>,
}

impl std::fmt::Debug for Loaded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Nothing of the key: only whether client certificates are checked.
        f.debug_struct("Loaded")
            .field("client_ca", &self.verifier.is_some())
            .finish_non_exhaustive()
    }
}

/// Builds a server configuration from the files, all or nothing.
pub fn server_config(files: &TlsFiles) -> Result<Loaded, TlsError> {
    let provider = provider();
    let chain = certificates("TLS certificate file", &files.cert)?;
    let key = private_key(&files.key)?;
    let builder = ServerConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    let mut client_verifier = None;
    let builder = match &files.client_ca {
        None => builder.with_no_client_auth(),
        Some(ca_path) => {
            let mut roots = RootCertStore::empty();
            for ca in certificates("client CA file", ca_path)? {
                roots.add(ca).map_err(|e| TlsError::ClientCa {
                    path: ca_path.display().to_string(),
                    why: e.to_string(),
                })?;
            }
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
            let verifier = if files.client_cert_optional {
                verifier.allow_unauthenticated()
            } else {
                verifier
            };
            let verifier = verifier.build().map_err(|e| TlsError::ClientCa {
                path: ca_path.display().to_string(),
                why: e.to_string(),
            })?;
            client_verifier = Some(verifier.clone());
            builder.with_client_cert_verifier(verifier)
        }
    };
    // Checks that the key belongs to the leaf certificate.
    let mut config = builder
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Rustls(e.to_string()))?;
    // gRPC is HTTP/2 only; clients insist on negotiating it.
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Loaded {
        config,
        verifier: client_verifier,
    })
}

/// The TLS configuration in force, replaceable while serving.
pub struct TlsReloader {
    files: TlsFiles,
    current: RwLock<Arc<ServerConfig>>,
    verifier: RwLock<Option<Arc<dyn ClientCertVerifier>>>,
}

impl std::fmt::Debug for TlsReloader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsReloader")
            .field("files", &self.files)
            .finish_non_exhaustive()
    }
}

impl TlsReloader {
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let loaded = server_config(&files)?;
        Ok(Self {
            files,
            current: RwLock::new(Arc::new(loaded.config)),
            verifier: RwLock::new(loaded.verifier),
        })
    }

    /// Re-reads the files; on any error the configuration in force stays.
    pub fn reload(&self) -> Result<(), TlsError> {
        self.install(server_config(&self.files)?);
        Ok(())
    }

    /// Puts a configuration built from these files in force.
    pub fn install(&self, loaded: Loaded) {
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(loaded.config);
        *self.verifier.write().unwrap_or_else(|e| e.into_inner()) = loaded.verifier;
    }

    /// Whether a client certificate chain (leaf first) that a handshake
    /// accepted would be accepted by the client CA in force now: rustls's
    /// own verifier, at the current time.
    pub fn still_verifies(&self, chain: &[CertificateDer<'static>]) -> bool {
        let verifier = self
            .verifier
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let (Some(verifier), Some((leaf, intermediates))) = (verifier, chain.split_first()) else {
            // No client CA in force: no certificate proves anything.
            return false;
        };
        verifier
            .verify_client_cert(leaf, intermediates, UnixTime::now())
            .is_ok()
    }

    pub fn current(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub fn files(&self) -> &TlsFiles {
        &self.files
    }
}
