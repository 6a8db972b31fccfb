//! TLS between the proxy function and the image server: the names of the environment
//! variables that carry the server's self-signed certificate and key (in the server's private
//! environment file) and its SHA-256 fingerprint (in the function's environment), and the
//! fingerprint's text form, which `up`, `status`, the proxy and a student checking the gallery
//! in a browser all read.
//!
//! Feature `tls` adds the client side every program that calls the server uses (the proxy,
//! `up`'s health check, the console's uploads): the server's certificate is self-signed, so no
//! certificate authority vouches for it; the client trusts exactly the certificate whose
//! SHA-256 fingerprint it was given, and nothing else. The host name is not checked: the
//! instance's public IP changes with every instance, and the pin already names one
//! certificate. The handshake's signature *is* checked against that certificate's key, so a
//! machine in the middle that copies the certificate but lacks the key is refused.

use std::fmt;

/// The server's certificate, DER, standard base64 (one line, so it fits an env file).
pub const TLS_CERT_ENV: &str = "HYBRIDLAB_TLS_CERT";
/// The certificate's private key, PKCS#8 DER, standard base64.
pub const TLS_KEY_ENV: &str = "HYBRIDLAB_TLS_KEY";
/// The function's pin: the SHA-256 fingerprint of the only certificate the proxy accepts.
pub const CERT_PIN_ENV: &str = "EC2_CERT_SHA256";

/// The SHA-256 digest of a certificate's DER bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CertFingerprint(pub [u8; 32]);

impl CertFingerprint {
    /// Reads the colon-separated form this type prints (as browsers show it) or plain hex;
    /// case does not matter.
    pub fn parse(text: &str) -> Option<Self> {
        let hex: Vec<u8> = text
            .trim()
            .bytes()
            .filter(|b| *b != b':' && *b != b' ')
            .collect();
        if hex.len() != 64 {
            return None;
        }
        let mut out = [0u8; 32];
        for (i, pair) in hex.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).ok()?;
            out[i] = u8::from_str_radix(text, 16).ok()?;
        }
        Some(Self(out))
    }
}

/// `AB:CD:...`: upper-case hex pairs, the form a browser's certificate viewer shows.
impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str(":")?;
            }
            write!(f, "{byte:02X}")?;
        }
        Ok(())
    }
}

#[cfg(feature = "tls")]
pub use pinned::*;

#[cfg(feature = "tls")]
mod pinned {
    use super::CertFingerprint;
    use std::sync::Arc;

    use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
    use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::{CertificateError, DigitallySignedStruct, Error, SignatureScheme};
    use sha2::{Digest as _, Sha256};
    use subtle::ConstantTimeEq as _;

    /// The SHA-256 fingerprint of a certificate's DER bytes.
    pub fn fingerprint(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }

    /// Accepts only the certificate with the pinned fingerprint.
    #[derive(Debug)]
    pub struct PinnedCertVerifier {
        pin: CertFingerprint,
        algorithms: WebPkiSupportedAlgorithms,
    }

    impl PinnedCertVerifier {
        pub fn new(pin: CertFingerprint, provider: &CryptoProvider) -> Self {
            Self {
                pin,
                algorithms: provider.signature_verification_algorithms,
            }
        }
    }

    impl ServerCertVerifier for PinnedCertVerifier {
        fn verify_server_cert(
            &self,
            end_entity: &CertificateDer<'_>,
            _intermediates: &[CertificateDer<'_>],
            _server_name: &ServerName<'_>,
            _ocsp_response: &[u8],
            _now: UnixTime,
        ) -> Result<ServerCertVerified, Error> {
            // Validity dates are not checked either: the certificate lives as long as the stack,
            // and the pin, not a date, is what says it is the stack's.
            let presented = fingerprint(end_entity);
            if bool::from(presented.0.ct_eq(&self.pin.0)) {
                Ok(ServerCertVerified::assertion())
            } else {
                Err(Error::InvalidCertificate(
                    CertificateError::ApplicationVerificationFailure,
                ))
            }
        }

        fn verify_tls12_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
        }

        fn verify_tls13_signature(
            &self,
            message: &[u8],
            cert: &CertificateDer<'_>,
            dss: &DigitallySignedStruct,
        ) -> Result<HandshakeSignatureValid, Error> {
            rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
        }

        fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
            self.algorithms.supported_schemes()
        }
    }

    /// A client configuration that trusts only the pinned certificate.
    pub fn pinned_client_config(pin: CertFingerprint) -> Result<rustls::ClientConfig, Error> {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier = Arc::new(PinnedCertVerifier::new(pin, &provider));
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(config)
    }

    /// Whether `err`'s chain says the server's certificate was refused (not the pinned one).
    pub fn is_untrusted_certificate(err: &(dyn std::error::Error + 'static)) -> bool {
        let mut current = Some(err);
        while let Some(err) = current {
            let rustls_error = err.downcast_ref::<Error>().or_else(|| {
                err.downcast_ref::<std::io::Error>()
                    .and_then(|io| io.get_ref())
                    .and_then(|inner| inner.downcast_ref::<Error>())
            });
            if matches!(rustls_error, Some(Error::InvalidCertificate(_))) {
                return true;
            }
            // Some layers between reqwest and rustls keep the error only as text (a boxed
            // error re-wrapped); rustls words this one so.
            if err.to_string().starts_with("invalid peer certificate") {
                return true;
            }
            current = err.source();
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fingerprint_round_trips_and_reads_plain_hex() {
        let fingerprint = CertFingerprint(std::array::from_fn(|i| i as u8 * 7));
        let text = fingerprint.to_string();
        assert_eq!(text.len(), 32 * 3 - 1);
        assert!(text.starts_with("00:07:0E:"), "{text}");
        assert_eq!(CertFingerprint::parse(&text), Some(fingerprint));
        let plain = text.replace(':', "").to_lowercase();
        assert_eq!(CertFingerprint::parse(&plain), Some(fingerprint));
        assert_eq!(CertFingerprint::parse("AB:CD"), None);
        assert_eq!(CertFingerprint::parse(&"zz".repeat(32)), None);
    }
}
