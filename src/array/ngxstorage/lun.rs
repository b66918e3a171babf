//! LUN endpoints: create, delete, modify (including resize with
//! verification), detail, detail list, list.

use serde_json::{Map, Value, json};

use super::client::{NgxClient, ResizeMode};
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::size::{ApiSize, to_api_size};
use super::types::{Lun, LunChanges, LunCreate, LunCreated, LunSummary, Rec, on_off};

pub(crate) fn decode_err(endpoint: Endpoint, client: &NgxClient, detail: String) -> NgxError {
    let (m, p) = endpoint.route(client.dialect());
    NgxError::Decode {
        api_call: format!("{} /{}", m.as_str(), p),
        detail,
    }
}

fn size_err(endpoint: Endpoint, client: &NgxClient, source: super::size::SizeError) -> NgxError {
    let (m, p) = endpoint.route(client.dialect());
    NgxError::Size {
        api_call: format!("{} /{}", m.as_str(), p),
        source,
    }
}

fn put_size(body: &mut Map<String, Value>, size: ApiSize) {
    body.insert("size".into(), json!(size.number));
    // `sing` is the document's table name; its example says `size_letter`
    // and the SDK sends `sing`.
    body.insert("sing".into(), json!(size.unit.letter()));
}

impl NgxClient {
    /// Creates one LUN. The size must be a whole number of MiB.
    pub async fn create_lun(&self, spec: &LunCreate) -> Result<LunCreated, NgxError> {
        let size = to_api_size(spec.size_bytes, &format!("Lun {}", spec.name))
            .map_err(|e| size_err(Endpoint::LunCreate, self, e))?;
        let mut body = Map::new();
        body.insert("pool_name".into(), json!(spec.pool));
        body.insert("name".into(), json!(spec.name));
        put_size(&mut body, size);
        body.insert("thin_provision".into(), json!(on_off(spec.thin)));
        if let Some(b) = &spec.blocksize {
            body.insert("blocksize".into(), json!(b));
        }
        if let Some(d) = spec.deduplication {
            body.insert("deduplication".into(), json!(on_off(d)));
        }
        if let Some(c) = spec.compression {
            body.insert("compression".into(), json!(on_off(c)));
        }
        if let Some(t) = &spec.io_type {
            body.insert("io_type".into(), json!(t));
        }
        if let Some(q) = spec.qos_priority {
            body.insert("qos_priority".into(), json!(q));
        }
        let answer = self
            .call(Endpoint::LunCreate, None, &[], Some(Value::Object(body)))
            .await?;
        let first = answer
            .get("luns")
            .and_then(Value::as_array)
            .and_then(|l| l.first())
            .ok_or_else(|| {
                decode_err(
                    Endpoint::LunCreate,
                    self,
                    "no `luns[0]` in the answer".into(),
                )
            })?;
        let r = Rec::new(first, self.dialect());
        Ok(LunCreated {
            id: r
                .need_str(Field::LunId)
                .map_err(|e| decode_err(Endpoint::LunCreate, self, e))?,
            scsi_lunid: r.str(Field::LunScsiId),
        })
    }

    /// Deletes a LUN. Already gone counts as success.
    pub async fn delete_lun(&self, id: &str) -> Result<(), NgxError> {
        match self.call(Endpoint::LunDelete, Some(id), &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// Changes LUN properties other than the size.
    pub async fn modify_lun(&self, id: &str, changes: &LunChanges) -> Result<(), NgxError> {
        let mut body = Map::new();
        let flags = [
            ("deduplication", changes.deduplication),
            ("compression", changes.compression),
            ("thin_provision", changes.thin),
            ("flash_cache", changes.flash_cache),
            ("dram_cache", changes.dram_cache),
        ];
        for (k, v) in flags {
            if let Some(v) = v {
                body.insert(k.into(), json!(on_off(v)));
            }
        }
        if let Some(t) = &changes.io_type {
            body.insert("io_type".into(), json!(t));
        }
        if let Some(q) = changes.qos_priority {
            body.insert("qos_priority".into(), json!(q));
        }
        self.call(
            Endpoint::LunModify,
            Some(id),
            &[],
            Some(Value::Object(body)),
        )
        .await
        .map(|_| ())
    }

    /// Grows a LUN to `new_size_bytes`, in the configured resize mode, then
    /// reads it back. A size other than the one asked for is
    /// [`NgxError::ResizeMismatch`]; the client never resizes a second time.
    /// Returns the LUN as read back.
    pub async fn resize_lun(&self, id: &str, new_size_bytes: u64) -> Result<Lun, NgxError> {
        let current = self.lun(id).await?;
        if new_size_bytes == current.size_bytes {
            return Ok(current);
        }
        if new_size_bytes < current.size_bytes {
            return Err(NgxError::Shrink {
                lun: id.to_string(),
                current: current.size_bytes,
                requested: new_size_bytes,
            });
        }
        let what = format!("Lun {} resize", current.name);
        // Both sizes are checked, so a delta of whole MiB also means the
        // target is reachable in whole MiB.
        to_api_size(new_size_bytes, &what).map_err(|e| size_err(Endpoint::LunModify, self, e))?;
        let sent = match self.resize_mode() {
            ResizeMode::Absolute => new_size_bytes,
            ResizeMode::Delta => new_size_bytes - current.size_bytes,
        };
        let size = to_api_size(sent, &what).map_err(|e| size_err(Endpoint::LunModify, self, e))?;
        let mut body = Map::new();
        put_size(&mut body, size);
        self.call(
            Endpoint::LunModify,
            Some(id),
            &[],
            Some(Value::Object(body)),
        )
        .await?;
        let after = self.lun(id).await?;
        if after.size_bytes != new_size_bytes {
            return Err(NgxError::ResizeMismatch {
                lun: id.to_string(),
                mode: self.resize_mode().as_str(),
                expected: new_size_bytes,
                observed: after.size_bytes,
            });
        }
        Ok(after)
    }

    /// One LUN in detail.
    pub async fn lun(&self, id: &str) -> Result<Lun, NgxError> {
        let v = self.call(Endpoint::LunDetail, Some(id), &[], None).await?;
        Lun::decode(&v, self.dialect()).map_err(|e| decode_err(Endpoint::LunDetail, self, e))
    }

    /// Every LUN in detail.
    pub async fn luns_detailed(&self) -> Result<Vec<Lun>, NgxError> {
        let v = self.call(Endpoint::LunDetailList, None, &[], None).await?;
        list(&v)
            .iter()
            .map(|l| Lun::decode(l, self.dialect()))
            .collect::<Result<_, _>>()
            .map_err(|e| decode_err(Endpoint::LunDetailList, self, e))
    }

    /// Every LUN, short form.
    pub async fn luns(&self) -> Result<Vec<LunSummary>, NgxError> {
        let v = self.call(Endpoint::LunList, None, &[], None).await?;
        list(&v)
            .iter()
            .map(|l| LunSummary::decode(l, self.dialect()))
            .collect::<Result<_, _>>()
            .map_err(|e| decode_err(Endpoint::LunList, self, e))
    }

    /// Finds a LUN by name (for the engine's crash-safe create).
    pub async fn find_lun_by_name(&self, name: &str) -> Result<Option<LunSummary>, NgxError> {
        Ok(self.luns().await?.into_iter().find(|l| l.name == name))
    }
}

/// The items of a list answer: a bare array, or an object wrapping one
/// (some answers wrap lists in `data` or `luns`).
pub(crate) fn list(v: &Value) -> &[Value] {
    match v {
        Value::Array(items) => items,
        Value::Object(o) => ["data", "luns", "items"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .map(Vec::as_slice)
            .unwrap_or(&[]),
        _ => &[],
    }
}
