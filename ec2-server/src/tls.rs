//! The server's TLS: the certificate and key from the configuration (base64 DER, as the
//! environment file carries them) made into the acceptor the accept loop uses.
//!
//! The certificate is self-signed and made by `up`; the proxy function trusts it by its
//! SHA-256 fingerprint, not by a name, so nothing here depends on the instance's address.

use std::sync::Arc;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Why the TLS configuration is unusable.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error(
        "HYBRIDLAB_TLS_CERT and HYBRIDLAB_TLS_KEY go together: give both (TLS) or neither (plain HTTP, for local tests only)"
    )]
    HalfConfigured,
    #[error("{0} is not standard base64")]
    NotBase64(&'static str),
    #[error("the certificate and key were refused: {0}")]
    Refused(#[from] rustls::Error),
}

/// The TLS configuration for `cert` and `key` (base64 DER), or `None` when neither is given.
pub fn server_config(
    cert: Option<&str>,
    key: Option<&str>,
) -> Result<Option<Arc<rustls::ServerConfig>>, TlsError> {
    fn given(value: Option<&str>) -> Option<&str> {
        value.map(str::trim).filter(|value| !value.is_empty())
    }
    let (cert, key) = match (given(cert), given(key)) {
        (None, None) => return Ok(None),
        (Some(cert), Some(key)) => (cert, key),
        _ => return Err(TlsError::HalfConfigured),
    };
    let cert = STANDARD
        .decode(cert)
        .map_err(|_| TlsError::NotBase64("HYBRIDLAB_TLS_CERT"))?;
    let key = STANDARD
        .decode(key)
        .map_err(|_| TlsError::NotBase64("HYBRIDLAB_TLS_KEY"))?;
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(
            vec![CertificateDer::from(cert)],
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Some(Arc::new(config)))
}
