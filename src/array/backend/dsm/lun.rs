//! The DSM adapter's LUN client: create (or clone), update, delete.

use super::*;

impl DsmBackend {
    /// See [`super::Backend::create_lun`].
    pub async fn create_lun(&self, desired: &DesiredLun) -> Result<String, BackendError> {
        let api_call = call(API_LUN, "create");
        let location = match &desired.placement {
            Placement::Volume(v) => v.clone(),
            Placement::Pool(p) => {
                return Err(BackendError::invalid(
                    api_call,
                    format!(
                        "spec.location: a Synology LUN lives on a volume (for example /volume1), not on pool {p:?}"
                    ),
                ));
            }
        };
        let dev_attribs = convert::dev_attribs_from(&api_call, &desired.settings)?;
        match &desired.source {
            None => {}
            Some(CloneSource::Lun(src)) => {
                return self.clone_lun(desired, src, &location, dev_attribs).await;
            }
            Some(CloneSource::Snapshot(_)) => {
                return Err(BackendError::unsupported(
                    call(API_LUN, "clone"),
                    "spec.source: DSM clones a LUN from a LUN; a clone from a snapshot is not offered by the API the operator uses",
                ));
            }
        }
        let type_word = desired
            .settings
            .get(convert::TYPE_KEY)
            .cloned()
            .unwrap_or_else(|| if desired.thin { "BLUN" } else { "BLUN_THICK" }.to_string());
        // A type that contradicts the thin flag would be reported as fixed
        // drift on every pass after the create; refuse it up front instead.
        if let Some(type_thin) = convert::thin_of_type(&type_word)
            && type_thin != desired.thin
        {
            return Err(BackendError::invalid(
                api_call,
                format!(
                    "spec.synology.type: {type_word} is {} but spec.thinProvisioning is {}",
                    if type_thin { "thin" } else { "thick" },
                    desired.thin
                ),
            ));
        }
        let req = CreateLun {
            name: desired.name.clone(),
            lun_type: convert::lun_type_of(&type_word),
            location,
            size: desired.size_bytes,
            description: desired.description.clone(),
            dev_attribs,
        };
        let created = self.client.luns().create(&req).await.map_err(vendor)?;
        Ok(created.uuid)
    }

    /// A clone into the same volume, then one `set` for what the spec asks
    /// beyond a copy (a larger size, the description, the flags), so one pass
    /// converges.
    async fn clone_lun(
        &self,
        desired: &DesiredLun,
        src: &str,
        location: &str,
        dev_attribs: crate::array::synology::DevAttribs,
    ) -> Result<String, BackendError> {
        let source = self.client.luns().get(src).await.map_err(vendor)?;
        let created = self
            .client
            .luns()
            .clone_lun(src, &desired.name, location)
            .await
            .map_err(vendor)?;
        let set = SetLun {
            new_name: None,
            new_size: (desired.size_bytes > source.size).then_some(desired.size_bytes),
            description: desired.description.clone(),
            dev_attribs,
        };
        if set != SetLun::default() {
            self.client
                .luns()
                .set(&created.uuid, &set)
                .await
                .map_err(vendor)?;
        }
        Ok(created.uuid)
    }

    /// See [`super::Backend::update_lun`].
    pub async fn update_lun(&self, id: &str, op: &LunOp) -> Result<(), BackendError> {
        let api_call = call(API_LUN, "set");
        let set = match op {
            LunOp::Grow { to_bytes, .. } => SetLun {
                new_size: Some(*to_bytes),
                ..SetLun::default()
            },
            LunOp::Rename { to } => SetLun {
                new_name: Some(to.clone()),
                ..SetLun::default()
            },
            LunOp::SetDescription(d) => SetLun {
                description: Some(d.clone()),
                ..SetLun::default()
            },
            LunOp::SetSettings(settings) => {
                if settings.contains_key(convert::TYPE_KEY) {
                    return Err(BackendError::unsupported(
                        api_call,
                        "spec.synology.type: DSM cannot change a LUN's type in place",
                    ));
                }
                SetLun {
                    dev_attribs: convert::dev_attribs_from(&api_call, settings)?,
                    ..SetLun::default()
                }
            }
            LunOp::Unmap { target_id: tid } => {
                let unmap = call(API_LUN, "unmap_target");
                let tid = super::target::target_id(&unmap, tid)?;
                return gone_is_ok(self.client.luns().unmap_target(id, &[tid]).await);
            }
            LunOp::Create(_) | LunOp::Delete { .. } => {
                return Err(BackendError::invalid(
                    api_call,
                    format!(
                        "{} is not an update: use create_lun / delete_lun",
                        op.verb()
                    ),
                ));
            }
        };
        if set == SetLun::default() {
            return Ok(());
        }
        self.client.luns().set(id, &set).await.map_err(vendor)
    }

    /// See [`super::Backend::delete_lun`]: already gone is success; a LUN
    /// still mapped is refused by DSM (InUse).
    pub async fn delete_lun(&self, id: &str) -> Result<(), BackendError> {
        gone_is_ok(self.client.luns().delete(id).await)
    }
}
