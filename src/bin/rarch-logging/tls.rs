//! The TLS step of `check`: a handshake of its own over the connected socket, verified as the
//! library verifies (the `ca_file` roots, else the platform's verifier), to show the server's
//! certificate: its subject, issuer and expiry.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use std::net::TcpStream;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A verifier that keeps the server's certificate and asks the real one.
#[derive(Debug)]
struct Keep {
    inner: Arc<dyn ServerCertVerifier>,
    seen: Mutex<Option<CertificateDer<'static>>>,
}

impl ServerCertVerifier for Keep {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut s) = self.seen.lock() {
            *s = Some(end_entity.clone().into_owned());
        }
        self.inner
            .verify_server_cert(end_entity, intermediates, server_name, ocsp, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// What the handshake showed: the protocol and the certificate's subject, issuer and expiry,
/// as lines; `Err` with the same lines and the reason when it failed.
pub fn handshake(
    sock: TcpStream,
    host: &str,
    ca_file: Option<&Path>,
    timeout: Duration,
) -> Result<Vec<String>, (Vec<String>, String)> {
    let provider = rarch_logging::tls::provider();
    let keep = Arc::new(Keep {
        inner: rarch_logging::tls::verifier(provider.clone(), ca_file)
            .map_err(|e| (Vec::new(), e))?,
        seen: Mutex::new(None),
    });
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| (Vec::new(), e.to_string()))?
        .dangerous()
        .with_custom_certificate_verifier(keep.clone())
        .with_no_client_auth();
    let name = ServerName::try_from(host.to_owned()).map_err(|e| (Vec::new(), e.to_string()))?;
    let mut conn =
        ClientConnection::new(Arc::new(config), name).map_err(|e| (Vec::new(), e.to_string()))?;
    let mut sock = sock;
    let _ = sock.set_read_timeout(Some(timeout));
    let _ = sock.set_write_timeout(Some(timeout));
    let mut result = Ok(());
    while conn.is_handshaking() {
        if let Err(e) = conn.complete_io(&mut sock) {
            result = Err(e.to_string());
            break;
        }
    }
    let mut lines = Vec::new();
    if result.is_ok() {
        if let Some(v) = conn.protocol_version() {
            lines.push(format!("{v:?}"));
        }
    }
    let seen = keep.seen.lock().ok().and_then(|s| s.clone());
    if let Some(der) = seen {
        lines.extend(describe(&der));
    }
    match result {
        Ok(()) => Ok(lines),
        Err(e) => Err((lines, e)),
    }
}

/// The subject, issuer and validity of a DER certificate.
fn describe(der: &[u8]) -> Vec<String> {
    match x509_parser::parse_x509_certificate(der) {
        Ok((_, c)) => {
            let v = c.validity();
            let mut out = vec![
                format!("subject {}", c.subject()),
                format!("issuer {}", c.issuer()),
                format!("expires {}", v.not_after),
            ];
            if let Ok(Some(san)) = c.subject_alternative_name() {
                let names: Vec<String> = san
                    .value
                    .general_names
                    .iter()
                    .map(|n| n.to_string())
                    .collect();
                out.push(format!("names {}", names.join(", ")));
            }
            out
        }
        Err(e) => vec![format!("certificate not readable: {e}")],
    }
}
