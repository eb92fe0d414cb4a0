//! The TLS client configuration of `https://` delivery on the event loop: rustls with the
//! *ring* provider, the roots of `ca_file` when it is given, else the platform's verifier (the
//! same trust ureq's `RootCerts::PlatformVerifier` gives the blocking paths). The command
//! line's `check` verifies with the same [`verifier`].

use rustls::client::danger::ServerCertVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::CertificateDer;
use rustls::ClientConfig;
use std::path::Path;
use std::sync::Arc;

/// The crypto provider every configuration here uses.
pub fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The verifier of the server's certificate: the roots of `ca_file`, else the platform's.
/// The error names the file and what is wrong with it.
pub fn verifier(
    provider: Arc<CryptoProvider>,
    ca_file: Option<&Path>,
) -> Result<Arc<dyn ServerCertVerifier>, String> {
    match ca_file {
        None => rustls_platform_verifier::Verifier::new(provider)
            .map(|v| Arc::new(v) as Arc<dyn ServerCertVerifier>)
            .map_err(|e| e.to_string()),
        Some(p) => {
            let mut roots = rustls::RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(p)
                .map_err(|e| format!("ca_file {}: {e}", p.display()))?;
            for c in certs {
                let c = c.map_err(|e| format!("ca_file {}: {e}", p.display()))?;
                roots
                    .add(c)
                    .map_err(|e| format!("ca_file {}: {e}", p.display()))?;
            }
            if roots.is_empty() {
                return Err(format!("ca_file {}: no PEM certificate in it", p.display()));
            }
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider)
                .build()
                .map(|v| v as Arc<dyn ServerCertVerifier>)
                .map_err(|e| e.to_string())
        }
    }
}

/// A client configuration for HTTP/1.1 over TLS 1.2 or 1.3, verified by [`verifier`].
pub fn client_config(ca_file: Option<&Path>) -> Result<Arc<ClientConfig>, String> {
    let provider = provider();
    let verifier = verifier(provider.clone(), ca_file)?;
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
