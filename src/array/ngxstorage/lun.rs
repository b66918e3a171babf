//! LUN endpoints: create, delete, modify (including resize with
//! verification), detail, detail list, list.

use serde_json::{Map, Value, json};

use super::client::{NgxClient, ResizeMode};
use super::dialect::{Endpoint, Field};
use super::error::NgxError;
use super::listing::{self, Listing};
use super::size::{ApiSize, to_api_size};
use super::types::{Lun, LunChanges, LunCreate, LunCreated, LunSummary, Rec, on_off};
use crate::array::error::{ArrayError, ErrorClass};

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

    /// Deletes a LUN. Already gone counts as success, but only when the
    /// array says so with a not-found code, or when a fresh list no longer
    /// holds the LUN: a code-less 404 is a route the array does not serve.
    pub async fn delete_lun(&self, id: &str) -> Result<(), NgxError> {
        match self.call(Endpoint::LunDelete, Some(id), &[], None).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_not_found() => Ok(()),
            Err(e) if e.http_status() == Some(404) => {
                let still_there = self.luns().await?.iter().any(|l| l.id == id);
                if still_there { Err(e) } else { Ok(()) }
            }
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

    /// Grows a LUN to `new_size_bytes` and reads it back; returns the LUN as
    /// read back. A size other than the one asked for is
    /// [`NgxError::ResizeMismatch`].
    ///
    /// `Absolute` and `Delta` send `size` as configured, once. `Auto` never
    /// risks a LUN larger than asked: it sends the increment first, which
    /// grows a delta array to exactly the target and an absolute array to
    /// at most the target (or is refused as a shrink). Only when the LUN
    /// read back shows the array took the increment as a total (it is now
    /// that increment, or unchanged with the increment at most the old
    /// size, or the shrink was refused) does it send the total, once. Any
    /// other answer stops with an error and nothing more is sent.
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
        let delta = new_size_bytes - current.size_bytes;
        to_api_size(delta, &what).map_err(|e| size_err(Endpoint::LunModify, self, e))?;
        let mode = self.resize_mode();
        match mode {
            ResizeMode::Absolute | ResizeMode::Delta => {
                let sent = if mode == ResizeMode::Absolute {
                    new_size_bytes
                } else {
                    delta
                };
                self.send_size(id, sent, &what).await?;
                let after = self.lun(id).await?;
                self.check_size(id, mode, new_size_bytes, after)
            }
            ResizeMode::Auto => {
                let first = self.send_size(id, delta, &what).await;
                let after = self.lun(id).await?;
                let took_as_total = match &first {
                    Ok(()) if after.size_bytes == new_size_bytes => {
                        self.learn_resize_mode(ResizeMode::Delta);
                        return Ok(after);
                    }
                    // A total array set the LUN to the increment.
                    Ok(()) => {
                        (after.size_bytes == delta && delta > current.size_bytes)
                            || (after.size_bytes == current.size_bytes
                                && delta <= current.size_bytes)
                    }
                    // A total array refused the increment as a shrink and
                    // left the LUN as it was.
                    // (An answer from the array, not a refusal of the
                    // client's own before sending.)
                    Err(e) => {
                        matches!(e, NgxError::Api { .. })
                            && e.class() == ErrorClass::InvalidRequest
                            && delta < current.size_bytes
                            && after.size_bytes == current.size_bytes
                    }
                };
                if !took_as_total {
                    return match first {
                        Err(e) => Err(e),
                        Ok(()) => Err(NgxError::ResizeMismatch {
                            lun: id.to_string(),
                            mode: ResizeMode::Auto.as_str(),
                            expected: new_size_bytes,
                            observed: after.size_bytes,
                        }),
                    };
                }
                self.learn_resize_mode(ResizeMode::Absolute);
                self.send_size(id, new_size_bytes, &what).await?;
                let last = self.lun(id).await?;
                self.check_size(id, ResizeMode::Absolute, new_size_bytes, last)
            }
        }
    }

    async fn send_size(&self, id: &str, bytes: u64, what: &str) -> Result<(), NgxError> {
        let size = to_api_size(bytes, what).map_err(|e| size_err(Endpoint::LunModify, self, e))?;
        let mut body = Map::new();
        put_size(&mut body, size);
        self.call(
            Endpoint::LunModify,
            Some(id),
            &[],
            Some(Value::Object(body)),
        )
        .await
        .map(|_| ())
    }

    fn check_size(
        &self,
        id: &str,
        mode: ResizeMode,
        expected: u64,
        after: Lun,
    ) -> Result<Lun, NgxError> {
        if after.size_bytes == expected {
            Ok(after)
        } else {
            Err(NgxError::ResizeMismatch {
                lun: id.to_string(),
                mode: mode.as_str(),
                expected,
                observed: after.size_bytes,
            })
        }
    }

    /// One LUN in detail.
    pub async fn lun(&self, id: &str) -> Result<Lun, NgxError> {
        let v = self.call(Endpoint::LunDetail, Some(id), &[], None).await?;
        Lun::decode(&v, self.dialect()).map_err(|e| decode_err(Endpoint::LunDetail, self, e))
    }

    /// Every LUN in detail; fails on a malformed record (see
    /// [`NgxClient::luns_detailed_listing`] for the partial view).
    pub async fn luns_detailed(&self) -> Result<Vec<Lun>, NgxError> {
        self.luns_detailed_listing().await?.into_strict()
    }

    /// Every LUN in detail, a malformed record reported on its own.
    pub async fn luns_detailed_listing(&self) -> Result<Listing<Lun>, NgxError> {
        listing::fetch(
            self,
            Endpoint::LunDetailList,
            &[],
            Field::LunId,
            Lun::decode,
        )
        .await
    }

    /// Every LUN, short form; fails on a malformed record.
    pub async fn luns(&self) -> Result<Vec<LunSummary>, NgxError> {
        self.luns_listing().await?.into_strict()
    }

    /// Every LUN, short form, a malformed record reported on its own.
    pub async fn luns_listing(&self) -> Result<Listing<LunSummary>, NgxError> {
        listing::fetch(
            self,
            Endpoint::LunList,
            &[],
            Field::LunId,
            LunSummary::decode,
        )
        .await
    }

    /// Finds a LUN by name (for the engine's crash-safe create).
    pub async fn find_lun_by_name(&self, name: &str) -> Result<Option<LunSummary>, NgxError> {
        Ok(self.luns().await?.into_iter().find(|l| l.name == name))
    }
}
