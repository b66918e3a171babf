//! The HTTPS transport both vendor clients share: trust roots, timeouts and a
//! per-array limit on concurrent requests.

use std::sync::Arc;
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// How to reach one array over HTTPS.
#[derive(Clone)]
pub struct TransportConfig {
    /// PEM bundle of CAs to trust instead of the built-in public roots
    /// (from `StorageArray.spec.tls.caSecretRef`).
    pub ca_bundle_pem: Option<String>,
    /// Accept any server certificate. Only when the StorageArray asks for it.
    pub insecure_skip_verify: bool,
    /// Upper bound on one request, connect to last byte.
    pub request_timeout: Duration,
    /// At most this many requests in flight to this array at once.
    pub max_concurrent_requests: usize,
}

impl Default for TransportConfig {
    fn default() -> Self {
        TransportConfig {
            ca_bundle_pem: None,
            insecure_skip_verify: false,
            request_timeout: Duration::from_secs(30),
            max_concurrent_requests: 4,
        }
    }
}

impl std::fmt::Debug for TransportConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransportConfig")
            .field("ca_bundle", &self.ca_bundle_pem.as_ref().map(|_| "<pem>"))
            .field("insecure_skip_verify", &self.insecure_skip_verify)
            .field("request_timeout", &self.request_timeout)
            .field("max_concurrent_requests", &self.max_concurrent_requests)
            .finish()
    }
}

/// Failure to set up the transport.
#[derive(Debug, thiserror::Error)]
pub enum TransportSetupError {
    /// The CA bundle is not PEM or holds no certificate.
    #[error("spec.tls.caSecretRef: the CA bundle is not a PEM certificate bundle: {0}")]
    BadCaBundle(String),
    /// rustls refused the configuration.
    #[error("TLS configuration: {0}")]
    Tls(#[from] rustls::Error),
    /// reqwest could not build the client.
    #[error("HTTP client: {0}")]
    Http(String),
}

/// A configured HTTP client plus the per-array concurrency limit.
#[derive(Clone, Debug)]
pub struct Transport {
    http: reqwest::Client,
    limiter: Arc<Semaphore>,
    request_timeout: Duration,
}

impl Transport {
    /// Builds the client for one array.
    pub fn new(config: &TransportConfig) -> Result<Self, TransportSetupError> {
        let tls = rustls_client_config(config)?;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(tls)
            .timeout(config.request_timeout)
            .connect_timeout(config.request_timeout.min(Duration::from_secs(10)))
            .pool_idle_timeout(Duration::from_secs(30))
            // A DSM or NGX endpoint is addressed directly; a proxy from the
            // environment would be a surprise.
            .no_proxy()
            .build()
            .map_err(|e| TransportSetupError::Http(e.to_string()))?;
        Ok(Transport {
            http,
            limiter: Arc::new(Semaphore::new(config.max_concurrent_requests.max(1))),
            request_timeout: config.request_timeout,
        })
    }

    /// The underlying client. Take a [`Transport::permit`] before each request.
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// Waits for a slot under the per-array concurrency limit. Fails only if
    /// the limiter was closed, which this type never does.
    pub async fn permit(&self) -> Result<OwnedSemaphorePermit, tokio::sync::AcquireError> {
        self.limiter.clone().acquire_owned().await
    }

    /// The configured request timeout.
    pub fn request_timeout(&self) -> Duration {
        self.request_timeout
    }
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The rustls client configuration for [`TransportConfig`].
pub fn rustls_client_config(
    config: &TransportConfig,
) -> Result<rustls::ClientConfig, TransportSetupError> {
    let builder = rustls::ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?;
    let tls = if config.insecure_skip_verify {
        builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAnyCertificate(provider())))
            .with_no_client_auth()
    } else {
        let mut roots = rustls::RootCertStore::empty();
        match &config.ca_bundle_pem {
            Some(pem) => {
                let mut reader = std::io::BufReader::new(pem.as_bytes());
                let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut reader)
                    .collect::<Result<_, _>>()
                    .map_err(|e| TransportSetupError::BadCaBundle(e.to_string()))?;
                if certs.is_empty() {
                    return Err(TransportSetupError::BadCaBundle(
                        "no CERTIFICATE block found".into(),
                    ));
                }
                for cert in certs {
                    roots
                        .add(cert)
                        .map_err(|e| TransportSetupError::BadCaBundle(e.to_string()))?;
                }
            }
            None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
        }
        builder.with_root_certificates(roots).with_no_client_auth()
    };
    Ok(tls)
}

/// Certificate verifier for `insecureSkipVerify`: trusts any certificate, but
/// still checks that the handshake was signed by it, so the session is at
/// least bound to the presented key.
#[derive(Debug)]
struct AcceptAnyCertificate(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}
