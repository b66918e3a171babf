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

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::array::backend::{Backend, BackendError};
use crate::model::{ObservedLun, ObservedTarget};
use crate::reconcile::identity::ArrayIndex;
use crate::reconcile::lun::LunOp;
use crate::reconcile::target::TargetOp;

/// Everything observed on one array at one moment.
#[derive(Clone, Debug, Default)]
pub struct ArrayView {
    /// Every LUN.
    pub luns: Vec<ObservedLun>,
    /// Every iSCSI target.
    pub targets: Vec<ObservedTarget>,
    /// LUN records the array listed but that could not be read (id where
    /// known, and why): they fail their own object only.
    pub malformed_luns: Vec<(Option<String>, BackendError)>,
    /// Target records that could not be read.
    pub malformed_targets: Vec<(Option<String>, BackendError)>,
}

impl ArrayView {
    /// The LUN with this id.
    pub fn lun(&self, id: &str) -> Option<&ObservedLun> {
        self.luns.iter().find(|l| l.id == id)
    }

    /// The target with this id.
    pub fn target(&self, id: &str) -> Option<&ObservedTarget> {
        self.targets.iter().find(|t| t.id == id)
    }

    /// The LUN with this name.
    pub fn lun_by_name(&self, name: &str) -> Option<&ObservedLun> {
        self.luns.iter().find(|l| l.name == name)
    }

    /// The target with this name.
    pub fn target_by_name(&self, name: &str) -> Option<&ObservedTarget> {
        self.targets.iter().find(|t| t.name == name)
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
        self.0
            .luns
            .iter()
            .find(|l| l.name == name)
            .map(|l| l.id.clone())
    }
}

/// Target ids and names of a view.
pub struct TargetIndex<'a>(&'a ArrayView);

impl ArrayIndex for TargetIndex<'_> {
    fn has_id(&self, id: &str) -> bool {
        self.0.target(id).is_some()
    }
    fn id_by_name(&self, name: &str) -> Option<String> {
        self.0
            .targets
            .iter()
            .find(|t| t.name == name)
            .map(|t| t.id.clone())
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
        let view = Arc::new(ArrayView {
            luns: o.luns,
            targets: o.targets,
            malformed_luns: o.malformed_luns,
            malformed_targets: o.malformed_targets,
        });
        let mut c = lock(&self.cached);
        c.view = Some(view.clone());
        c.at = Some(started);
        Ok(view)
    }

    fn fresh_since(&self, since: Option<Instant>) -> Option<Arc<ArrayView>> {
        let c = lock(&self.cached);
        match (&c.view, c.at) {
            (Some(v), Some(at)) if since.is_none_or(|s| at >= s) => Some(v.clone()),
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
    let pos = view.luns.iter().position(|l| l.id == id);
    match (pos, lun) {
        (Some(i), Some(l)) => view.luns[i] = l,
        (Some(i), None) => {
            view.luns.remove(i);
        }
        (None, Some(l)) => view.luns.push(l),
        (None, None) => {}
    }
}

/// Replaces (or inserts, or removes) the target `id` in a view.
pub fn put_target(view: &mut ArrayView, id: &str, target: Option<ObservedTarget>) {
    let pos = view.targets.iter().position(|t| t.id == id);
    match (pos, target) {
        (Some(i), Some(t)) => view.targets[i] = t,
        (Some(i), None) => {
            view.targets.remove(i);
        }
        (None, Some(t)) => view.targets.push(t),
        (None, None) => {}
    }
}

/// Puts the LUN `id` as it is after `op` (one of the operator's own
/// writes), and the target side of it: a deleted or unmapped LUN leaves
/// the targets' mapping lists.
pub fn put_lun_after(
    view: &mut ArrayView,
    id: &str,
    after: Option<&ObservedLun>,
    op: Option<&LunOp>,
) {
    put_lun(view, id, after.cloned());
    match op {
        Some(LunOp::Delete { .. }) => {
            for t in view.targets.iter_mut() {
                t.mapped_luns.retain(|l| l != id);
            }
        }
        Some(LunOp::Unmap { target_id }) => {
            if let Some(t) = view.targets.iter_mut().find(|t| t.id == *target_id) {
                t.mapped_luns.retain(|l| l != id);
            }
        }
        _ => {}
    }
}

/// Puts the target `id` as it is after `op`, and the LUN side of a
/// mapping.
pub fn put_target_after(
    view: &mut ArrayView,
    id: &str,
    after: Option<&ObservedTarget>,
    op: Option<&TargetOp>,
) {
    put_target(view, id, after.cloned());
    match op {
        Some(TargetOp::Map { lun_id }) => {
            if let Some(l) = view.luns.iter_mut().find(|l| l.id == *lun_id)
                && !l.mapped_targets.iter().any(|t| t == id)
            {
                l.mapped_targets.push(id.to_string());
            }
        }
        Some(TargetOp::Unmap { lun_id }) => {
            if let Some(l) = view.luns.iter_mut().find(|l| l.id == *lun_id) {
                l.mapped_targets.retain(|t| t != id);
            }
        }
        Some(TargetOp::Delete { .. }) => {
            for l in view.luns.iter_mut() {
                l.mapped_targets.retain(|t| t != id);
            }
        }
        _ => {}
    }
}
