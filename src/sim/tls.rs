//! Throwaway TLS material for the simulators.
//!
//! Each simulator run makes its own CA and a server certificate signed by it for
//! `127.0.0.1`, `::1` and `localhost`. A client verifies the server by trusting
//! that CA (written out with `--ca-out`), exactly as an admin would trust a
//! private CA through `StorageArray.spec.tls.caSecretRef`. The leaf is never
//! self-signed: rustls refuses a CA certificate used as an end entity
//! (`CaUsedAsEndEntity`), so a self-signed leaf would only test the
//! `insecureSkipVerify` path.

use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose, SanType,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

/// Failure while making the simulator's TLS material.
#[derive(Debug, thiserror::Error)]
pub enum SimTlsError {
    /// rcgen could not generate a key or sign a certificate.
    #[error("generating simulator certificate: {0}")]
    Certificate(#[from] rcgen::Error),
    /// rustls refused the generated certificate or key.
    #[error("building the simulator TLS server config: {0}")]
    Rustls(#[from] rustls::Error),
}

/// A CA and a server configuration whose certificate that CA signed.
#[derive(Clone)]
pub struct SimTls {
    /// The CA certificate in PEM, for clients to trust.
    pub ca_pem: String,
    /// The rustls server configuration presenting the leaf certificate.
    pub server_config: Arc<rustls::ServerConfig>,
}

impl std::fmt::Debug for SimTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The private key lives inside server_config; never print it.
        f.debug_struct("SimTls").finish_non_exhaustive()
    }
}

impl SimTls {
    /// Makes a fresh CA and a leaf for the loopback names.
    pub fn generate() -> Result<Self, SimTlsError> {
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "array-operator simulator CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca_pem = ca_cert.pem();
        let issuer = Issuer::new(ca_params, ca_key);

        let leaf_key = KeyPair::generate()?;
        let mut leaf_params = CertificateParams::new(vec!["localhost".to_string()])?;
        leaf_params
            .distinguished_name
            .push(DnType::CommonName, "array-operator simulator");
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        leaf_params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V6(
                std::net::Ipv6Addr::LOCALHOST,
            )));
        leaf_params.is_ca = IsCa::ExplicitNoCa;
        leaf_params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_cert = leaf_params.signed_by(&leaf_key, &issuer)?;

        let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(chain, key)?;
        Ok(SimTls {
            ca_pem,
            server_config: Arc::new(server_config),
        })
    }

    /// Makes a certificate that is its own CA, as an appliance's factory
    /// certificate often is. Only `insecureSkipVerify` can talk to it.
    pub fn generate_self_signed_leaf() -> Result<Self, SimTlsError> {
        let key = KeyPair::generate()?;
        let mut params = CertificateParams::new(vec!["localhost".to_string()])?;
        params
            .subject_alt_names
            .push(SanType::IpAddress(std::net::IpAddr::V4(
                std::net::Ipv4Addr::LOCALHOST,
            )));
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let cert = params.self_signed(&key)?;
        let ca_pem = cert.pem();
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()));
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let server_config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], der)?;
        Ok(SimTls {
            ca_pem,
            server_config: Arc::new(server_config),
        })
    }
}
