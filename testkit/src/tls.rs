//! Certificates for peer TLS, made at run time: a CA ([`TestCa`]) issues a certificate per
//! peer, valid or expired, for whatever names a test needs, and writes the three PEM files a
//! peer is given (`--peer-tls-cert`, `--peer-tls-key`, `--peer-tls-ca`).

use std::path::{Path, PathBuf};

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair,
    KeyUsagePurpose,
};

/// A certificate authority of a test.
pub struct TestCa {
    cert: rcgen::Certificate,
    key: KeyPair,
}

/// Whether an issued certificate is valid now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Validity {
    Now,
    /// Valid during 2020 only.
    Expired,
}

/// Where a peer's three files are.
#[derive(Debug, Clone)]
pub struct TlsPaths {
    pub cert: PathBuf,
    pub key: PathBuf,
    pub ca: PathBuf,
}

impl TlsPaths {
    /// The peer's flags for these files.
    pub fn flags(&self) -> Vec<String> {
        vec![
            "--peer-tls-cert".into(),
            self.cert.display().to_string(),
            "--peer-tls-key".into(),
            self.key.display().to_string(),
            "--peer-tls-ca".into(),
            self.ca.display().to_string(),
        ]
    }

    /// The files of peer `name` under `dir` (`dir/name/{cert,key,ca}.pem`).
    pub fn under(dir: &Path, name: &str) -> TlsPaths {
        let d = dir.join(name);
        TlsPaths {
            cert: d.join("cert.pem"),
            key: d.join("key.pem"),
            ca: d.join("ca.pem"),
        }
    }
}

/// A certificate and its key, PEM.
pub struct Issued {
    pub cert: String,
    pub key: String,
}

impl TestCa {
    /// A new CA named `name` (ECDSA P-256).
    pub fn new(name: &str) -> TestCa {
        let key = KeyPair::generate().expect("CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-signed CA");
        TestCa { cert, key }
    }

    /// The CA certificate, PEM.
    pub fn pem(&self) -> String {
        self.cert.pem()
    }

    /// A certificate for `names` (DNS names in its SAN), for server and client use.
    pub fn issue(&self, names: &[&str], validity: Validity) -> Issued {
        let key = KeyPair::generate().expect("peer key");
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        let mut params = CertificateParams::new(names.clone()).expect("peer params");
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().cloned().unwrap_or_default(),
        );
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2020, 1, 1);
            params.not_after = rcgen::date_time_ymd(2021, 1, 1);
        }
        let cert = params
            .signed_by(&key, &self.cert, &self.key)
            .expect("sign a peer certificate");
        Issued {
            cert: cert.pem(),
            key: key.serialize_pem(),
        }
    }

    /// Writes a certificate for `names` and this CA to `paths`; `trusted` is what the CA file
    /// holds (this CA's PEM when `None`).
    pub fn write(
        &self,
        paths: &TlsPaths,
        names: &[&str],
        validity: Validity,
        trusted: Option<&str>,
    ) {
        let issued = self.issue(names, validity);
        write_files(paths, &issued, trusted.unwrap_or(&self.pem()));
    }
}

/// Writes the three files, each replaced at once (written aside, then renamed), as a
/// Kubernetes Secret volume swaps its files.
pub fn write_files(paths: &TlsPaths, issued: &Issued, ca: &str) {
    for (path, text) in [
        (&paths.cert, issued.cert.as_str()),
        (&paths.key, issued.key.as_str()),
        (&paths.ca, ca),
    ] {
        let dir = path.parent().expect("a file in a directory");
        std::fs::create_dir_all(dir).expect("create the TLS directory");
        let aside = path.with_extension("new");
        std::fs::write(&aside, text).expect("write a TLS file");
        std::fs::rename(&aside, path).expect("move a TLS file in place");
    }
}
