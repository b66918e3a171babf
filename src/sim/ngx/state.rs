//! The simulated array's in-memory state, and the typed accessor tests use
//! to read and change it out of band.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard};

/// A pool. Free space is derived: total minus what full LUNs reserve.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPool {
    /// `pool_id`.
    pub id: String,
    /// `pool_name`.
    pub name: String,
    /// Owning controller.
    pub owner: String,
    /// Total bytes.
    pub total_bytes: u64,
    /// `is_flash`.
    pub is_flash: bool,
}

/// A LUN.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimLun {
    /// `vol_id`.
    pub id: String,
    /// `vol_name`.
    pub name: String,
    /// The pool's id.
    pub pool_id: String,
    /// `vol_size`, bytes.
    pub size_bytes: u64,
    /// `vol_used`, bytes.
    pub used_bytes: u64,
    /// `scsi_lunid`.
    pub scsi_lunid: String,
    /// Thin provisioned; a full LUN reserves its whole size in the pool.
    pub thin: bool,
    /// Block size in bytes.
    pub blocksize_bytes: u64,
    /// `dedup`.
    pub dedup: bool,
    /// `compress`.
    pub compress: bool,
    /// `io_type`.
    pub io_type: String,
    /// `qos_priority`.
    pub qos_priority: u64,
    /// `flash_cache`.
    pub flash_cache: bool,
    /// `dram_cache`.
    pub dram_cache: bool,
    /// Owning controller.
    pub owner: String,
    /// The snapshot it was cloned from.
    pub clone_of: Option<String>,
    /// Creation time, Unix seconds.
    pub created: u64,
}

/// A LUN mapped to a target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimMapping {
    /// The LUN's `vol_id`.
    pub vol_id: String,
    /// LUN number on the target.
    pub number: u32,
}

/// An iSCSI target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimTarget {
    /// `scsi_id`.
    pub id: String,
    /// `scsi_target_name`.
    pub name: String,
    /// `target_iqn`.
    pub iqn: String,
    /// Portal group id.
    pub portal_group_id: String,
    /// Auth group id.
    pub auth_group_id: String,
    /// Owner.
    pub owner: String,
    /// Mapped LUNs, in mapping order.
    pub luns: Vec<SimMapping>,
}

/// An allowed initiator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimInitiator {
    /// Entry id.
    pub id: String,
    /// IQN.
    pub iqn: String,
    /// Alias.
    pub alias: String,
}

/// An auth group.
#[derive(Clone, PartialEq, Eq)]
pub struct SimAuthGroup {
    /// `group_id`.
    pub id: String,
    /// `group_name`.
    pub name: String,
    /// Owner; the default group has none.
    pub owner: Option<String>,
    /// CHAP user and password.
    pub chap: Option<(String, String)>,
    /// Allowed initiators.
    pub initiators: Vec<SimInitiator>,
}

impl std::fmt::Debug for SimAuthGroup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimAuthGroup")
            .field("id", &self.id)
            .field("name", &self.name)
            .field("owner", &self.owner)
            .field("chap_user", &self.chap.as_ref().map(|c| &c.0))
            .field("initiators", &self.initiators)
            .finish()
    }
}

/// A portal group.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimPortalGroup {
    /// Id.
    pub id: String,
    /// Name.
    pub name: String,
    /// Owner.
    pub owner: String,
    /// Listen addresses.
    pub listen_ips: Vec<String>,
}

/// A LUN snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSnapshot {
    /// `snap_id`.
    pub id: String,
    /// `snap_name`.
    pub name: String,
    /// The LUN's `vol_id`.
    pub vol_id: String,
    /// The LUN's size when taken (restore sets it back).
    pub size_bytes: u64,
    /// Creation time, Unix seconds.
    pub created: u64,
    /// `reserved`, bytes.
    pub reserved: u64,
    /// A clone is bound to it.
    pub binded: bool,
}

/// A native snapshot schedule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SimSchedule {
    /// Id.
    pub id: String,
    /// The LUN's `vol_id`.
    pub vol_id: String,
    /// `cron_time`.
    pub cron: String,
    /// `keep_max`.
    pub keep_max: u64,
    /// Whether it runs (the SDK's `enabled`; the document has no off switch,
    /// so a document-dialect schedule is always enabled).
    pub enabled: bool,
    /// Owner.
    pub owner: String,
}

/// Everything the simulated array holds.
#[derive(Clone, Debug, Default)]
pub struct ArrayState {
    /// Serial; controller ids are `<tag>_A` and `<tag>_B`.
    pub service_tag: String,
    /// Pools by id.
    pub pools: BTreeMap<String, SimPool>,
    /// LUNs by id (written through [`ArrayState::put_lun`] and friends, so
    /// the name index stays true).
    luns: BTreeMap<String, SimLun>,
    /// LUN ids by name: a create's "name taken" check must not scan every
    /// LUN, or a simulated 10,000-LUN array answers in quadratic time.
    lun_ids_by_name: HashMap<String, String>,
    /// Targets by id.
    pub targets: BTreeMap<String, SimTarget>,
    /// Auth groups by id.
    pub auth_groups: BTreeMap<String, SimAuthGroup>,
    /// Portal groups by id.
    pub portal_groups: BTreeMap<String, SimPortalGroup>,
    /// Snapshots by id.
    pub snapshots: BTreeMap<String, SimSnapshot>,
    /// Schedules by LUN id.
    pub schedules: BTreeMap<String, SimSchedule>,
    /// How `PATCH lun/{id}` reads `size`, overriding the dialect's reading
    /// (`None`): `Some(true)` adds it, `Some(false)` sets it. Lets a test
    /// pair either dialect with either firmware behaviour.
    pub resize_delta: Option<bool>,
    /// Fields forced into the rendered record of an object, by object id:
    /// a firmware bug or a hostile array, for tests of how a client copes
    /// with one bad record (`Value::Null` removes the field).
    pub tampered: BTreeMap<String, serde_json::Map<String, serde_json::Value>>,
}

impl ArrayState {
    /// The two controller ids.
    pub fn owners(&self) -> [String; 2] {
        [
            format!("{}_A", self.service_tag),
            format!("{}_B", self.service_tag),
        ]
    }

    /// Bytes that full LUNs reserve in a pool.
    pub fn pool_allocated(&self, pool_id: &str) -> u64 {
        self.luns
            .values()
            .filter(|l| l.pool_id == pool_id)
            .map(|l| if l.thin { l.used_bytes } else { l.size_bytes })
            .sum()
    }

    /// Free bytes in a pool.
    pub fn pool_free(&self, pool_id: &str) -> u64 {
        let total = self.pools.get(pool_id).map(|p| p.total_bytes).unwrap_or(0);
        total.saturating_sub(self.pool_allocated(pool_id))
    }

    /// A pool by name.
    pub fn pool_by_name(&self, name: &str) -> Option<&SimPool> {
        self.pools.values().find(|p| p.name == name)
    }

    /// A LUN by name.
    pub fn lun_by_name(&self, name: &str) -> Option<&SimLun> {
        self.lun_ids_by_name
            .get(name)
            .and_then(|id| self.luns.get(id))
    }

    /// The LUNs, by id.
    pub fn luns(&self) -> &BTreeMap<String, SimLun> {
        &self.luns
    }

    /// Inserts or replaces a LUN (a rename moves it in the name index).
    pub fn put_lun(&mut self, lun: SimLun) -> Option<SimLun> {
        let before = self.luns.insert(lun.id.clone(), lun.clone());
        if let Some(b) = &before
            && b.name != lun.name
            && self.lun_ids_by_name.get(&b.name) == Some(&b.id)
        {
            self.lun_ids_by_name.remove(&b.name);
        }
        self.lun_ids_by_name.insert(lun.name, lun.id);
        before
    }

    /// Removes a LUN (nothing else: mappings and snapshots are the caller's).
    pub fn take_lun(&mut self, id: &str) -> Option<SimLun> {
        let before = self.luns.remove(id)?;
        if self.lun_ids_by_name.get(&before.name) == Some(&before.id) {
            self.lun_ids_by_name.remove(&before.name);
        }
        Some(before)
    }

    /// Changes one LUN in place; false when there is no such LUN.
    pub fn edit_lun(&mut self, id: &str, f: impl FnOnce(&mut SimLun)) -> bool {
        let Some(mut lun) = self.luns.get(id).cloned() else {
            return false;
        };
        f(&mut lun);
        self.put_lun(lun);
        true
    }

    /// Applies the tampering for `id` to a rendered record.
    pub fn apply_tampering(&self, id: &str, record: &mut serde_json::Value) {
        if let (Some(fields), Some(o)) = (self.tampered.get(id), record.as_object_mut()) {
            for (k, v) in fields {
                if v.is_null() {
                    o.remove(k);
                } else {
                    o.insert(k.clone(), v.clone());
                }
            }
        }
    }

    /// Whether a live LUN is a clone of the snapshot `snap_id`.
    pub fn has_clone_of(&self, snap_id: &str) -> bool {
        self.luns
            .values()
            .any(|l| l.clone_of.as_deref() == Some(snap_id))
    }

    /// Targets a LUN is mapped to.
    pub fn targets_of(&self, vol_id: &str) -> Vec<&SimTarget> {
        self.targets
            .values()
            .filter(|t| t.luns.iter().any(|m| m.vol_id == vol_id))
            .collect()
    }
}

/// The shared, lockable state. Cloning shares it, so two simulator
/// instances (an HA pair) or a restarted one see the same array.
#[derive(Clone, Debug, Default)]
pub struct SimState {
    inner: Arc<Mutex<ArrayState>>,
}

impl SimState {
    /// Wraps a state.
    pub fn new(state: ArrayState) -> Self {
        SimState {
            inner: Arc::new(Mutex::new(state)),
        }
    }

    fn lock(&self) -> MutexGuard<'_, ArrayState> {
        // A test that panicked while holding the lock must not wedge the array.
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Reads the state.
    pub fn read<R>(&self, f: impl FnOnce(&ArrayState) -> R) -> R {
        f(&self.lock())
    }

    /// Changes the state out of band (as an admin on the array's GUI would).
    pub fn write<R>(&self, f: impl FnOnce(&mut ArrayState) -> R) -> R {
        f(&mut self.lock())
    }

    /// A copy of one LUN.
    pub fn lun(&self, id: &str) -> Option<SimLun> {
        self.read(|s| s.luns().get(id).cloned())
    }

    /// A copy of one LUN, by name.
    pub fn lun_by_name(&self, name: &str) -> Option<SimLun> {
        self.read(|s| s.lun_by_name(name).cloned())
    }

    /// How many LUNs are named `name`.
    pub fn count_luns_named(&self, name: &str) -> usize {
        self.read(|s| s.luns().values().filter(|l| l.name == name).count())
    }

    /// A copy of one target.
    pub fn target(&self, id: &str) -> Option<SimTarget> {
        self.read(|s| s.targets.get(id).cloned())
    }

    /// Sets a LUN's size out of band; false when there is no such LUN.
    pub fn set_lun_size(&self, id: &str, bytes: u64) -> bool {
        self.write(|s| s.edit_lun(id, |l| l.size_bytes = bytes))
    }

    /// Deletes a LUN out of band, with its mappings and snapshots.
    pub fn remove_lun(&self, id: &str) -> Option<SimLun> {
        self.write(|s| {
            for t in s.targets.values_mut() {
                t.luns.retain(|m| m.vol_id != id);
            }
            s.snapshots.retain(|_, snap| snap.vol_id != id);
            s.schedules.remove(id);
            s.take_lun(id)
        })
    }

    /// Drops one mapping out of band; false when it was not there.
    pub fn unmap(&self, target_id: &str, vol_id: &str) -> bool {
        self.write(|s| {
            s.targets.get_mut(target_id).is_some_and(|t| {
                let before = t.luns.len();
                t.luns.retain(|m| m.vol_id != vol_id);
                t.luns.len() != before
            })
        })
    }

    /// Makes `PATCH lun/{id}` read `size` as an increment (`true`) or the
    /// new total (`false`), whatever the dialect.
    pub fn set_resize_delta(&self, delta: bool) {
        self.write(|s| s.resize_delta = Some(delta));
    }

    /// From now on the array renders `field` of object `id` (LUN, target,
    /// snapshot) as `value`; `Value::Null` drops the field.
    pub fn tamper(&self, id: &str, field: &str, value: serde_json::Value) {
        self.write(|s| {
            s.tampered
                .entry(id.to_string())
                .or_default()
                .insert(field.to_string(), value);
        });
    }

    /// Free bytes of the pool named `name`.
    pub fn pool_free_by_name(&self, name: &str) -> Option<u64> {
        self.read(|s| s.pool_by_name(name).map(|p| s.pool_free(&p.id)))
    }
}
