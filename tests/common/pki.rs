//! Certificates made at test time (rcgen): a CA and leaves for 127.0.0.1/localhost, for the
//! receiver's https (`-tls-cert`, `-tls-key`).

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};
use std::path::PathBuf;

pub struct Pki {
    dir: tempfile::TempDir,
}

impl Pki {
    /// A CA, and leaves: `good` (127.0.0.1 + localhost, by the CA), `wrong_name` (by the CA,
    /// for another name), `expired` (by the CA, for 127.0.0.1) and `self_signed` (127.0.0.1).
    pub fn new() -> Pki {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.distinguished_name
            .push(DnType::CommonName, "rarch-logging test CA");
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca.self_signed(&ca_key).unwrap();
        std::fs::write(dir.path().join("ca.pem"), ca_cert.pem()).unwrap();
        let issuer = Issuer::new(ca, ca_key);
        let leaf = |name: &str, sans: &[&str], expired: bool, by_ca: bool| {
            let key = KeyPair::generate().unwrap();
            let mut p =
                CertificateParams::new(sans.iter().map(|s| s.to_string()).collect::<Vec<_>>())
                    .unwrap();
            p.distinguished_name.push(DnType::CommonName, sans[0]);
            if expired {
                p.not_before = rcgen::date_time_ymd(2000, 1, 1);
                p.not_after = rcgen::date_time_ymd(2001, 1, 1);
            }
            let cert = if by_ca {
                p.signed_by(&key, &issuer).unwrap()
            } else {
                p.self_signed(&key).unwrap()
            };
            std::fs::write(dir.path().join(format!("{name}.pem")), cert.pem()).unwrap();
            std::fs::write(dir.path().join(format!("{name}.key")), key.serialize_pem()).unwrap();
        };
        leaf("good", &["127.0.0.1", "localhost"], false, true);
        leaf("wrong_name", &["other.example"], false, true);
        leaf("expired", &["127.0.0.1", "localhost"], true, true);
        leaf("self_signed", &["127.0.0.1", "localhost"], false, false);
        Pki { dir }
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}
