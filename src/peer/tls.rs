//! Optional mutual TLS between peers (`--peer-tls-cert`, `--peer-tls-key`, `--peer-tls-ca`):
//! TLS 1.3 only (rustls with ring), both ends present a certificate of the CA in the CA file,
//! and a certificate counts only for the names it carries: the peer's id or its StatefulSet
//! DNS name ([`names_of`]).
//!
//! - The opener checks the acceptor's certificate against the peer it meant to reach
//!   ([`PeerTls::connector`]); the acceptor checks the opener's chain during the handshake
//!   ([`PeerTls::acceptor`]) and its name against the sender each request names
//!   ([`valid_for`], in the peer server's admission).
//! - The three files are read again when a connection is made, at most every
//!   [`RECHECK`]; new connections use what they hold then (cert-manager rotates a mounted
//!   Secret in place). Files that do not load keep the previous ones in use, with a warning.
//!   [`PeerTls::generation`] changes with each load, so the opener of a stream can replace a
//!   connection made with older files.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{verify_tls12_signature, verify_tls13_signature, CryptoProvider};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::server::{ParsedCertificate, WebPkiClientVerifier};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, ServerConfig, SignatureScheme};
use tokio_rustls::{TlsAcceptor, TlsConnector};

pub use crate::config::{host_of, names_of, TlsFiles};

/// How often the files are read again at most (only when a connection is made).
pub const RECHECK: Duration = Duration::from_secs(5);

/// Why the TLS files cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {flag} {path}: {source}")]
    Read {
        flag: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{flag} {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----): {why}")]
    NoCertificate {
        flag: &'static str,
        path: PathBuf,
        why: String,
    },
    #[error(
        "--peer-tls-key {path} holds no usable PEM private key (PKCS#8, PKCS#1 or SEC1): {why}"
    )]
    Key { path: PathBuf, why: String },
    #[error("--peer-tls-ca {path}: {why}")]
    Ca { path: PathBuf, why: String },
    #[error("--peer-tls-cert and --peer-tls-key do not make a usable certificate: {0}")]
    Pair(String),
}

/// The certificate a peer presented on the connection a request came over (a request
/// extension set by the peer listener).
#[derive(Clone, Debug)]
pub struct PeerCertificate(pub Arc<CertificateDer<'static>>);

/// What one reading of the files gives.
struct Loaded {
    raw: [Vec<u8>; 3],
    generation: u64,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    roots: Arc<RootCertStore>,
    server: Arc<ServerConfig>,
}

struct State {
    loaded: Arc<Loaded>,
    checked: Instant,
}

/// The peer TLS credentials, read again when they change.
pub struct PeerTls {
    files: TlsFiles,
    provider: Arc<CryptoProvider>,
    state: Mutex<State>,
    generations: AtomicU64,
}

impl std::fmt::Debug for PeerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PeerTls")
            .field("files", &self.files)
            .finish()
    }
}

fn read(flag: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        flag,
        path: path.to_path_buf(),
        source,
    })
}

fn certificates(
    flag: &'static str,
    path: &Path,
    pem: &[u8],
) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let no = |why: String| TlsError::NoCertificate {
        flag,
        path: path.to_path_buf(),
        why,
    };
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| no(e.to_string()))?;
    if certs.is_empty() {
        return Err(no("none found".into()));
    }
    Ok(certs)
}

impl Loaded {
    fn read(files: &TlsFiles) -> Result<[Vec<u8>; 3], TlsError> {
        Ok([
            read("--peer-tls-cert", &files.cert)?,
            read("--peer-tls-key", &files.key)?,
            read("--peer-tls-ca", &files.ca)?,
        ])
    }

    fn parse(
        files: &TlsFiles,
        raw: [Vec<u8>; 3],
        generation: u64,
        provider: &Arc<CryptoProvider>,
    ) -> Result<Loaded, TlsError> {
        let chain = certificates("--peer-tls-cert", &files.cert, &raw[0])?;
        let key = PrivateKeyDer::from_pem_slice(&raw[1]).map_err(|e| TlsError::Key {
            path: files.key.clone(),
            why: e.to_string(),
        })?;
        let ca_error = |why: String| TlsError::Ca {
            path: files.ca.clone(),
            why,
        };
        let mut roots = RootCertStore::empty();
        for ca in certificates("--peer-tls-ca", &files.ca, &raw[2])? {
            roots
                .add(ca)
                .map_err(|e| ca_error(format!("not a usable CA certificate: {e}")))?;
        }
        let roots = Arc::new(roots);
        let verifier = WebPkiClientVerifier::builder_with_provider(roots.clone(), provider.clone())
            .build()
            .map_err(|e| ca_error(e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&rustls::version::TLS13])
            .map_err(|e| TlsError::Pair(e.to_string()))?
            .with_client_cert_verifier(verifier)
            .with_single_cert(chain.clone(), key.clone_key())
            .map_err(|e| TlsError::Pair(e.to_string()))?;
        // The client side with the same pair: a key that does not match fails here too.
        client_config(provider, &roots, &chain, &key, Vec::new())?;
        Ok(Loaded {
            raw,
            generation,
            chain,
            key,
            roots,
            server: Arc::new(server),
        })
    }
}

fn client_config(
    provider: &Arc<CryptoProvider>,
    roots: &Arc<RootCertStore>,
    chain: &[CertificateDer<'static>],
    key: &PrivateKeyDer<'static>,
    names: Vec<ServerName<'static>>,
) -> Result<ClientConfig, TlsError> {
    let verifier = PeerVerifier {
        roots: roots.clone(),
        provider: provider.clone(),
        names,
    };
    ClientConfig::builder_with_provider(provider.clone())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| TlsError::Pair(e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(verifier))
        .with_client_auth_cert(chain.to_vec(), key.clone_key())
        .map_err(|e| TlsError::Pair(e.to_string()))
}

impl PeerTls {
    /// Reads and checks the files: an error says which one is wrong and why.
    pub fn load(files: TlsFiles) -> Result<Self, TlsError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let loaded = Loaded::parse(&files, Loaded::read(&files)?, 1, &provider)?;
        Ok(PeerTls {
            files,
            provider,
            state: Mutex::new(State {
                loaded: Arc::new(loaded),
                checked: Instant::now(),
            }),
            generations: AtomicU64::new(1),
        })
    }

    /// The credentials in use, read again from the files when [`RECHECK`] has passed.
    fn current(&self) -> Arc<Loaded> {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if state.checked.elapsed() >= RECHECK {
            state.checked = Instant::now();
            match Loaded::read(&self.files) {
                Ok(raw) if raw == state.loaded.raw => {}
                Ok(raw) => {
                    let generation = self.generations.fetch_add(1, Ordering::Relaxed) + 1;
                    match Loaded::parse(&self.files, raw, generation, &self.provider) {
                        Ok(loaded) => {
                            tracing::info!(
                                generation,
                                "the peer TLS files changed; new connections use them"
                            );
                            state.loaded = Arc::new(loaded);
                        }
                        Err(e) => {
                            tracing::warn!(error = %e, "the peer TLS files changed but do not load; keeping the previous ones")
                        }
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the peer TLS files again; keeping the previous ones")
                }
            }
        }
        state.loaded.clone()
    }

    /// Which reading of the files new connections use now (re-reads them when due).
    pub fn generation(&self) -> u64 {
        self.current().generation
    }

    /// Accepts a peer's connection: TLS 1.3, a client certificate of the CA required.
    pub fn acceptor(&self) -> TlsAcceptor {
        TlsAcceptor::from(self.current().server.clone())
    }

    /// Connects to a peer whose certificate must be valid for one of `names` (its id, its
    /// DNS name); the name to send in the handshake comes with it.
    pub fn connector(
        &self,
        names: &[String],
    ) -> Result<(TlsConnector, ServerName<'static>), String> {
        let names: Vec<ServerName<'static>> = names
            .iter()
            .filter_map(|n| ServerName::try_from(n.clone()).ok())
            .collect();
        let first = names
            .first()
            .cloned()
            .ok_or_else(|| "the peer has no name a certificate can carry".to_string())?;
        let loaded = self.current();
        let config = client_config(
            &self.provider,
            &loaded.roots,
            &loaded.chain,
            &loaded.key,
            names,
        )
        .map_err(|e| e.to_string())?;
        Ok((TlsConnector::from(Arc::new(config)), first))
    }
}

/// Whether `cert` carries one of `names` (its chain was checked by the handshake).
pub fn valid_for(cert: &CertificateDer<'_>, names: &[String]) -> bool {
    let Ok(parsed) = ParsedCertificate::try_from(cert) else {
        return false;
    };
    names.iter().any(|n| {
        ServerName::try_from(n.as_str())
            .is_ok_and(|n| rustls::client::verify_server_name(&parsed, &n).is_ok())
    })
}

/// Checks the acceptor's certificate: chained to the CA, valid now, for one of the names of
/// the peer this connection is for (not only the one sent in the handshake).
#[derive(Debug)]
struct PeerVerifier {
    roots: Arc<RootCertStore>,
    provider: Arc<CryptoProvider>,
    names: Vec<ServerName<'static>>,
}

impl ServerCertVerifier for PeerVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let cert = ParsedCertificate::try_from(end_entity)?;
        rustls::client::verify_server_cert_signed_by_trust_anchor(
            &cert,
            &self.roots,
            intermediates,
            now,
            self.provider.signature_verification_algorithms.all,
        )?;
        let mut last = rustls::Error::InvalidCertificate(rustls::CertificateError::NotValidForName);
        for name in &self.names {
            match rustls::client::verify_server_name(&cert, name) {
                Ok(()) => return Ok(ServerCertVerified::assertion()),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use testkit::tls::{TestCa, TlsPaths, Validity};

    use super::*;

    fn loaded(dir: &Path, ca: &TestCa, names: &[&str]) -> (PeerTls, TlsPaths) {
        let paths = TlsPaths::under(dir, "p");
        ca.write(&paths, names, Validity::Now, None);
        let files = TlsFiles {
            cert: paths.cert.clone(),
            key: paths.key.clone(),
            ca: paths.ca.clone(),
        };
        (PeerTls::load(files).expect("load"), paths)
    }

    fn der(paths: &TlsPaths) -> CertificateDer<'static> {
        let pem = std::fs::read(&paths.cert).expect("read");
        CertificateDer::from_pem_slice(&pem).expect("a certificate")
    }

    fn due(tls: &PeerTls) {
        let mut state = tls.state.lock().expect("lock");
        state.checked = Instant::now() - RECHECK;
    }

    #[test]
    fn a_certificate_counts_for_the_names_it_carries_only() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = TestCa::new("ca");
        let (_, paths) = loaded(
            dir.path(),
            &ca,
            &["web-1", "web-1.web.jobs.svc.cluster.local"],
        );
        let cert = der(&paths);
        assert!(valid_for(&cert, &["web-1".into()]));
        assert!(valid_for(
            &cert,
            &["x".into(), "web-1.web.jobs.svc.cluster.local".into()]
        ));
        assert!(!valid_for(
            &cert,
            &["web-2".into(), "web-2.web.jobs.svc.cluster.local".into()]
        ));
        assert!(!valid_for(
            &CertificateDer::from(vec![1, 2, 3]),
            &["web-1".into()]
        ));
    }

    #[test]
    fn a_peer_is_known_by_its_id_and_its_dns_name_never_by_an_address() {
        assert_eq!(
            names_of("web-0", Some("web-0.web.ns.svc")),
            ["web-0", "web-0.web.ns.svc"]
        );
        assert_eq!(names_of("web-0", Some("127.0.0.1")), ["web-0"]);
        assert_eq!(names_of("web-0", Some("web-0")), ["web-0"]);
        assert_eq!(names_of("web-0", None), ["web-0"]);
        assert_eq!(host_of("web-0.web:7001"), "web-0.web");
        assert_eq!(host_of("nohost"), "nohost");
    }

    #[test]
    fn changed_files_are_read_when_due_and_bad_ones_keep_the_previous() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = TestCa::new("ca");
        let (tls, paths) = loaded(dir.path(), &ca, &["a"]);
        assert_eq!(tls.generation(), 1);
        // Unchanged files: same generation even when due.
        due(&tls);
        assert_eq!(tls.generation(), 1);
        // New files: read only once due.
        ca.write(&paths, &["a"], Validity::Now, None);
        assert_eq!(tls.generation(), 1);
        due(&tls);
        assert_eq!(tls.generation(), 2);
        // A key that does not go with the certificate: kept the previous reading.
        let other = ca.issue(&["a"], Validity::Now);
        std::fs::write(&paths.key, other.key).expect("write");
        due(&tls);
        assert_eq!(tls.generation(), 2);
        // A missing file: the same.
        std::fs::remove_file(&paths.ca).expect("remove");
        due(&tls);
        assert_eq!(tls.generation(), 2);
    }

    /// A TLS handshake in memory between an opener for `names` and an acceptor.
    async fn handshake(
        opener: &PeerTls,
        acceptor: &PeerTls,
        names: &[String],
    ) -> Result<(), String> {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (connector, name) = opener.connector(names)?;
        let acceptor = acceptor.acceptor();
        let (client, server) = tokio::join!(connector.connect(name, a), acceptor.accept(b));
        // The end that refused says why; the other got an alert.
        match (client, server) {
            (Ok(_), Ok(_)) => Ok(()),
            (Err(c), Err(s)) => Err(format!("opener: {c}; acceptor: {s}")),
            (Err(c), Ok(_)) => Err(format!("opener: {c}")),
            (Ok(_), Err(s)) => Err(format!("acceptor: {s}")),
        }
    }

    #[tokio::test]
    async fn both_ends_check_the_chain_and_the_opener_checks_the_name() {
        let dir = tempfile::tempdir().expect("dir");
        let ca = TestCa::new("ca");
        let (a, _) = loaded(&dir.path().join("a"), &ca, &["a"]);
        let (b, _) = loaded(&dir.path().join("b"), &ca, &["b"]);
        handshake(&a, &b, &["b".into()])
            .await
            .expect("same CA, right name");
        let wrong = handshake(&a, &b, &["c".into()])
            .await
            .expect_err("another name");
        assert!(
            wrong.starts_with("opener") && wrong.contains("not valid for name"),
            "{wrong}"
        );

        // A certificate of another CA: refused by the opener, and as an opener's by the
        // acceptor (this one trusts the right CA, so only its own certificate is wrong).
        let other = TestCa::new("other");
        let (x, _) = loaded(&dir.path().join("x"), &other, &["b"]);
        let foreign = handshake(&a, &x, &["b".into()])
            .await
            .expect_err("another CA");
        assert!(
            foreign.starts_with("opener") && foreign.to_lowercase().contains("issuer"),
            "{foreign}"
        );
        let y_paths = TlsPaths::under(&dir.path().join("y"), "p");
        other.write(&y_paths, &["a"], Validity::Now, Some(&ca.pem()));
        let y = PeerTls::load(TlsFiles {
            cert: y_paths.cert.clone(),
            key: y_paths.key.clone(),
            ca: y_paths.ca.clone(),
        })
        .expect("load");
        let foreign = handshake(&y, &b, &["b".into()])
            .await
            .expect_err("another CA");
        assert!(
            foreign.contains("acceptor") && foreign.to_lowercase().contains("issuer"),
            "{foreign}"
        );

        let expired = TlsPaths::under(&dir.path().join("e"), "p");
        ca.write(&expired, &["b"], Validity::Expired, None);
        let files = TlsFiles {
            cert: expired.cert.clone(),
            key: expired.key.clone(),
            ca: expired.ca.clone(),
        };
        let e = PeerTls::load(files).expect("an expired certificate still loads");
        let old = handshake(&a, &e, &["b".into()]).await.expect_err("expired");
        assert!(
            old.starts_with("opener") && old.to_lowercase().contains("expired"),
            "{old}"
        );
        let old = handshake(&e, &b, &["b".into()]).await.expect_err("expired");
        assert!(
            old.contains("acceptor") && old.to_lowercase().contains("expired"),
            "{old}"
        );
    }
}
