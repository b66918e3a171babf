//! Reading the Secrets a spec names (CHAP credentials), as the engine
//! needs them: a missing Secret is waited for, a missing key is an invalid
//! spec naming the field, and values never reach a message.

use crate::crd::shared::SecretRef;
use crate::model::ChapCredential;

use super::Cluster;
use super::lifecycle::Unresolved;
use super::spec_error::InvalidSpec;

/// The CHAP credential (keys `username` and `password`) in the Secret
/// `secret` that `field` names; its resourceVersion is pushed to
/// `versions`, so a rotated Secret is noticed.
pub async fn chap_credential(
    cluster: &impl Cluster,
    namespace: &str,
    field: &str,
    secret: &SecretRef,
    versions: &mut Vec<String>,
) -> Result<ChapCredential, Unresolved> {
    let data = match cluster.secret(namespace, &secret.name).await {
        Ok(Some(d)) => d,
        Ok(None) => {
            return Err(Unresolved::Waiting(format!(
                "{field}: Secret {} does not exist",
                secret.name
            )));
        }
        Err(e) => return Err(Unresolved::Api(e)),
    };
    let get = |k: &str| {
        data.data
            .get(k)
            .filter(|v| !v.expose().is_empty())
            .cloned()
            .ok_or_else(|| {
                Unresolved::Invalid(InvalidSpec::new(
                    field,
                    format!("Secret {} has no key {k:?}", secret.name),
                ))
            })
    };
    let username = get("username")?.expose().to_string();
    let password = get("password")?;
    versions.push(data.resource_version.clone());
    Ok(ChapCredential { username, password })
}
