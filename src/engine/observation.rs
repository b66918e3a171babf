//! The shared, batched observation of one array.
//!
//! One refresh lists every LUN and every target (one list call per object
//! type, whatever the number of objects), and every reconcile of that array
//! reads the same view. Concurrent reconciles that find the view stale wait
//! for a single refresh instead of each starting one. The operator's own
//! writes are applied to the view as they succeed (through the same model
//! the diff is tested against), so a burst of creates does not turn into a
//! burst of lists; a write that fails because the view was wrong (not found,
//! already exists) drops the view so the next reconcile re-lists.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use imbl::OrdMap;

use crate::array::backend::{Backend, BackendError, CreateTask};
use crate::model::{ObservedLun, ObservedTarget};
use crate::reconcile::identity::ArrayIndex;
use crate::reconcile::lun::LunOp;
use crate::reconcile::target::TargetOp;
use crate::reconcile::virtual_machine::ObservedGuest;

/// Everything observed on one array at one moment, indexed by id and by
/// name. The maps are persistent (structurally shared): cloning a view is
/// O(1) and a write to a shared view costs O(log n), so reconciles can hold
/// their snapshot while others write through.
#[derive(Clone, Debug, Default)]
pub struct ArrayView {
    // Values behind `Arc`: a write to a shared node copies pointers, not
    // records.
    luns: OrdMap<String, Arc<ObservedLun>>,
    lun_names: OrdMap<String, Vec<String>>,
    targets: OrdMap<String, Arc<ObservedTarget>>,
    target_names: OrdMap<String, Vec<String>>,
    /// LUN records the array listed but that could not be read (id where
    /// known, and why): they fail their own object only.
    pub malformed_luns: Vec<(Option<String>, BackendError)>,
    /// Target records that could not be read.
    pub malformed_targets: Vec<(Option<String>, BackendError)>,
    guests: OrdMap<String, Arc<ObservedGuest>>,
    guest_names: OrdMap<String, Vec<String>>,
    /// True when this view listed the VMM guests (only arrays some
    /// VirtualMachine names pay for that list).
    pub guests_listed: bool,
    /// Guest records that could not be read, and, with no id, a guest
    /// create task still running: until it ends a guest may exist that the
    /// list does not show, so no guest create is settled or decided.
    pub malformed_guests: Vec<(Option<String>, BackendError)>,
    /// The creates still running on the array as tasks (VMM guest
    /// creates), with their progress: an object whose create record names
    /// one of them waits for it.
    pub create_tasks: Vec<CreateTask>,
}

/// Adds `id` under `name` (ids of one name keep the order they came in).
fn name_add(names: &mut OrdMap<String, Vec<String>>, name: &str, id: &str) {
    let mut ids = names.get(name).cloned().unwrap_or_default();
    if !ids.iter().any(|i| i == id) {
        ids.push(id.to_string());
        names.insert(name.to_string(), ids);
    }
}

/// Removes `id` from under `name`.
fn name_remove(names: &mut OrdMap<String, Vec<String>>, name: &str, id: &str) {
    if let Some(mut ids) = names.get(name).cloned() {
        ids.retain(|i| i != id);
        if ids.is_empty() {
            names.remove(name);
        } else {
            names.insert(name.to_string(), ids);
        }
    }
}

impl ArrayView {
    /// A view of these records, in the order the array listed them (the
    /// first of two records with one name is the one found by name).
    pub fn new(
        luns: impl IntoIterator<Item = ObservedLun>,
        targets: impl IntoIterator<Item = ObservedTarget>,
    ) -> Self {
        let mut view = ArrayView::default();
        for l in luns {
            let id = l.id.clone();
            put_lun(&mut view, &id, Some(l));
        }
        for t in targets {
            let id = t.id.clone();
            put_target(&mut view, &id, Some(t));
        }
        view
    }

    /// The LUN with this id.
    pub fn lun(&self, id: &str) -> Option<&ObservedLun> {
        self.luns.get(id).map(Arc::as_ref)
    }

    /// The target with this id.
    pub fn target(&self, id: &str) -> Option<&ObservedTarget> {
        self.targets.get(id).map(Arc::as_ref)
    }

    /// The LUN with this name (the first listed, if the array has two).
    pub fn lun_by_name(&self, name: &str) -> Option<&ObservedLun> {
        self.lun_names
            .get(name)
            .and_then(|ids| ids.first())
            .and_then(|id| self.lun(id))
    }

    /// The target with this name (the first listed, if the array has two).
    pub fn target_by_name(&self, name: &str) -> Option<&ObservedTarget> {
        self.target_names
            .get(name)
            .and_then(|ids| ids.first())
            .and_then(|id| self.target(id))
    }

    /// Every LUN, by id.
    pub fn luns(&self) -> impl Iterator<Item = &ObservedLun> {
        self.luns.values().map(Arc::as_ref)
    }

    /// Every target, by id.
    pub fn targets(&self) -> impl Iterator<Item = &ObservedTarget> {
        self.targets.values().map(Arc::as_ref)
    }

    /// The number of LUNs.
    pub fn lun_count(&self) -> usize {
        self.luns.len()
    }

    /// The number of targets.
    pub fn target_count(&self) -> usize {
        self.targets.len()
    }

    /// The guest with this id.
    pub fn guest(&self, id: &str) -> Option<&ObservedGuest> {
        self.guests.get(id).map(Arc::as_ref)
    }

    /// The guest with this name (the first listed, if VMM has two).
    pub fn guest_by_name(&self, name: &str) -> Option<&ObservedGuest> {
        self.guest_names
            .get(name)
            .and_then(|ids| ids.first())
            .and_then(|id| self.guest(id))
    }

    /// The number of guests.
    pub fn guest_count(&self) -> usize {
        self.guests.len()
    }

    /// The LUNs, as an identity index.
    pub fn lun_index(&self) -> LunIndex<'_> {
        LunIndex(self)
    }

    /// The targets, as an identity index.
    pub fn target_index(&self) -> TargetIndex<'_> {
        TargetIndex(self)
    }
}

/// LUN ids and names of a view.
pub struct LunIndex<'a>(&'a ArrayView);

impl ArrayIndex for LunIndex<'_> {
    fn has_id(&self, id: &str) -> bool {
        self.0.lun(id).is_some()
    }
    fn id_by_name(&self, name: &str) -> Option<String> {
        self.0.lun_by_name(name).map(|l| l.id.clone())
    }
}

/// Target ids and names of a view.
pub struct TargetIndex<'a>(&'a ArrayView);

impl ArrayIndex for TargetIndex<'_> {
    fn has_id(&self, id: &str) -> bool {
        self.0.target(id).is_some()
    }
    fn id_by_name(&self, name: &str) -> Option<String> {
        self.0.target_by_name(name).map(|t| t.id.clone())
    }
}

/// The sentence a running guest-create task puts in the view.
fn create_running(tasks: &[CreateTask]) -> BackendError {
    // Not a refusal: the next pass retries (with backoff) until it ends.
    BackendError {
        class: crate::array::error::ErrorClass::Other,
        vendor_code: None,
        api_call: "SYNO.Virtualization.API.Task.Info".into(),
        message: format!(
            "guest create task {} is still running; guests are listed once it ends",
            tasks
                .iter()
                .map(|t| t.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

#[derive(Debug, Default)]
struct Cached {
    view: Option<Arc<ArrayView>>,
    at: Option<Instant>,
}

/// The cache of one array's view. Cloning shares it.
#[derive(Clone, Debug, Default)]
pub struct ObservationCache {
    cached: Arc<Mutex<Cached>>,
    /// Held while a refresh runs, so concurrent callers share it.
    refreshing: Arc<tokio::sync::Mutex<()>>,
    /// Set once a VirtualMachine reads this array: from then on every
    /// refresh also lists the guests (one Guest.list, and the running
    /// create tasks), and arrays without one never pay for it.
    guests: Arc<AtomicBool>,
}

fn lock(m: &Mutex<Cached>) -> MutexGuard<'_, Cached> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl ObservationCache {
    /// The view, refreshed when it is older than `max_age`. Callers that
    /// arrive during a refresh wait for it and share its result.
    pub async fn view(
        &self,
        backend: &Backend,
        max_age: Duration,
    ) -> Result<Arc<ArrayView>, BackendError> {
        let since = Instant::now().checked_sub(max_age);
        self.view_since(backend, since).await
    }

    /// The view, refreshed unless it was listed after `since` (a refresh
    /// counts from when its list calls started, so a view that might have
    /// missed a change made at `since` is never taken for one that saw it).
    pub async fn view_since(
        &self,
        backend: &Backend,
        since: Option<Instant>,
    ) -> Result<Arc<ArrayView>, BackendError> {
        if let Some(v) = self.fresh_since(since) {
            return Ok(v);
        }
        let _refresh = self.refreshing.lock().await;
        // Someone may have refreshed while this caller waited.
        if let Some(v) = self.fresh_since(since) {
            return Ok(v);
        }
        let started = Instant::now();
        let o = backend.observe().await?;
        let mut view = ArrayView::new(o.luns, o.targets);
        view.malformed_luns = o.malformed_luns;
        view.malformed_targets = o.malformed_targets;
        if self.guests.load(Ordering::Relaxed) {
            // The running tasks first: a task that ends after this check has
            // its guest in the list below; one that ended before it too.
            let running = backend.guest_creates_in_flight().await?;
            for g in backend.list_guests().await? {
                let id = g.id.clone();
                put_guest(&mut view, &id, Some(g));
            }
            if !running.is_empty() {
                view.malformed_guests.push((None, create_running(&running)));
            }
            view.create_tasks = running;
            view.guests_listed = true;
        }
        let view = Arc::new(view);
        let mut c = lock(&self.cached);
        c.view = Some(view.clone());
        c.at = Some(started);
        Ok(view)
    }

    /// From now on every refresh lists the guests too; a view listed
    /// without them is no longer fresh.
    pub fn want_guests(&self) {
        self.guests.store(true, Ordering::Relaxed);
    }

    fn fresh_since(&self, since: Option<Instant>) -> Option<Arc<ArrayView>> {
        let guests = self.guests.load(Ordering::Relaxed);
        let c = lock(&self.cached);
        match (&c.view, c.at) {
            (Some(v), Some(at))
                if since.is_none_or(|s| at >= s) && (!guests || v.guests_listed) =>
            {
                Some(v.clone())
            }
            _ => None,
        }
    }

    /// Forgets the view: the next reader re-lists.
    pub fn invalidate(&self) {
        let mut c = lock(&self.cached);
        c.view = None;
        c.at = None;
    }

    /// Applies one of the operator's own successful writes to the view.
    pub fn write_through(&self, change: impl FnOnce(&mut ArrayView)) {
        let mut c = lock(&self.cached);
        if let Some(v) = c.view.as_mut() {
            change(Arc::make_mut(v));
        }
    }

    /// The current view without refreshing, if there is one.
    pub fn peek(&self) -> Option<Arc<ArrayView>> {
        lock(&self.cached).view.clone()
    }
}

/// Replaces (or inserts, or removes) the LUN `id` in a view.
pub fn put_lun(view: &mut ArrayView, id: &str, lun: Option<ObservedLun>) {
    let before = match lun {
        Some(l) => {
            let name = l.name.clone();
            let before = view.luns.insert(id.to_string(), Arc::new(l));
            if let Some(b) = before.as_ref().filter(|b| b.name != name) {
                name_remove(&mut view.lun_names, &b.name, id);
            }
            name_add(&mut view.lun_names, &name, id);
            return;
        }
        None => view.luns.remove(id),
    };
    if let Some(b) = before {
        name_remove(&mut view.lun_names, &b.name, id);
    }
}

/// Replaces (or inserts, or removes) the target `id` in a view.
pub fn put_target(view: &mut ArrayView, id: &str, target: Option<ObservedTarget>) {
    let before = match target {
        Some(t) => {
            let name = t.name.clone();
            let before = view.targets.insert(id.to_string(), Arc::new(t));
            if let Some(b) = before.as_ref().filter(|b| b.name != name) {
                name_remove(&mut view.target_names, &b.name, id);
            }
            name_add(&mut view.target_names, &name, id);
            return;
        }
        None => view.targets.remove(id),
    };
    if let Some(b) = before {
        name_remove(&mut view.target_names, &b.name, id);
    }
}

/// Replaces (or inserts, or removes) the guest `id` in a view.
pub fn put_guest(view: &mut ArrayView, id: &str, guest: Option<ObservedGuest>) {
    let before = match guest {
        Some(g) => {
            let name = g.name.clone();
            let before = view.guests.insert(id.to_string(), Arc::new(g));
            if let Some(b) = before.as_ref().filter(|b| b.name != name) {
                name_remove(&mut view.guest_names, &b.name, id);
            }
            name_add(&mut view.guest_names, &name, id);
            return;
        }
        None => view.guests.remove(id),
    };
    if let Some(b) = before {
        name_remove(&mut view.guest_names, &b.name, id);
    }
}

/// Changes one LUN record in place.
fn edit_lun(view: &mut ArrayView, id: &str, change: impl FnOnce(&mut ObservedLun)) {
    if let Some(l) = view.luns.get_mut(id) {
        change(Arc::make_mut(l));
    }
}

/// Changes one target record in place.
fn edit_target(view: &mut ArrayView, id: &str, change: impl FnOnce(&mut ObservedTarget)) {
    if let Some(t) = view.targets.get_mut(id) {
        change(Arc::make_mut(t));
    }
}

/// Puts the LUN `id` as it is after `op` (one of the operator's own
/// writes), and the target side of it: a deleted or unmapped LUN leaves
/// the targets' mapping lists. Touches only the targets the LUN was
/// mapped to, so a write costs the same at 10 LUNs as at 10,000.
pub fn put_lun_after(
    view: &mut ArrayView,
    id: &str,
    after: Option<&ObservedLun>,
    op: Option<&LunOp>,
) {
    let mapped_before = view
        .lun(id)
        .map(|l| l.mapped_targets.clone())
        .unwrap_or_default();
    put_lun(view, id, after.cloned());
    match op {
        Some(LunOp::Delete { .. }) => {
            for t in &mapped_before {
                edit_target(view, t, |t| t.mapped_luns.retain(|l| l != id));
            }
        }
        Some(LunOp::Unmap { target_id }) => {
            edit_target(view, target_id, |t| t.mapped_luns.retain(|l| l != id));
        }
        _ => {}
    }
}

/// Puts the target `id` as it is after `op`, and the LUN side of its
/// mappings: the LUNs it gained or lost (from the records before and after,
/// so a create that bound LUNs counts too) gain or lose it. Touches only
/// those LUNs.
pub fn put_target_after(
    view: &mut ArrayView,
    id: &str,
    after: Option<&ObservedTarget>,
    _op: Option<&TargetOp>,
) {
    let before = view
        .target(id)
        .map(|t| t.mapped_luns.clone())
        .unwrap_or_default();
    let now = after.map(|t| t.mapped_luns.clone()).unwrap_or_default();
    put_target(view, id, after.cloned());
    for lun_id in before.iter().filter(|l| !now.contains(l)) {
        edit_lun(view, lun_id, |l| l.mapped_targets.retain(|t| t != id));
    }
    for lun_id in now.iter().filter(|l| !before.contains(l)) {
        edit_lun(view, lun_id, |l| {
            if !l.mapped_targets.iter().any(|t| t == id) {
                l.mapped_targets.push(id.to_string());
            }
        });
    }
}
