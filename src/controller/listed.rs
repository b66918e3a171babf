//! "This watch has delivered its first full list", for any number of
//! waiters.
//!
//! Why not `Store::wait_until_ready`: in kube-runtime 5 it waits on a
//! oneshot receiver that keeps only the last waker registered, so of two
//! tasks waiting at once one may never wake, and a non-blocking check
//! (`now_or_never`) replaces the waker of a task already waiting. A store
//! many reconciles read concurrently needs a flag every waiter sees: a
//! `tokio::sync::watch` channel, set by the watch stream when it passes
//! `InitDone` (after the reflector applied it).

use std::sync::Arc;

use kube::runtime::watcher;
use tokio::sync::watch;

/// Set once a watch has listed; cloning shares it.
#[derive(Clone, Debug)]
pub struct Listed(Arc<watch::Sender<bool>>);

impl Default for Listed {
    fn default() -> Self {
        Listed(Arc::new(watch::Sender::new(false)))
    }
}

impl Listed {
    /// Not listed yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Marks the first list done (later calls change nothing).
    pub fn mark(&self) {
        self.0
            .send_if_modified(|listed| !std::mem::replace(listed, true));
    }

    /// Marks it on `InitDone`: for `.inspect` on a watch stream, after the
    /// reflector.
    pub fn on_event<K>(&self, event: &Result<watcher::Event<K>, watcher::Error>) {
        if matches!(event, Ok(watcher::Event::InitDone)) {
            self.mark();
        }
    }

    /// True once listed.
    pub fn is_listed(&self) -> bool {
        *self.0.borrow()
    }

    /// Waits until listed.
    pub async fn wait(&self) {
        let mut rx = self.0.subscribe();
        // The sender lives in `self`, so the channel cannot close here.
        let _ = rx.wait_for(|listed| *listed).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn every_waiter_wakes_when_the_list_is_done() {
        let listed = Listed::new();
        assert!(!listed.is_listed());
        let waiters: Vec<_> = (0..3)
            .map(|_| {
                let l = listed.clone();
                tokio::spawn(async move { l.wait().await })
            })
            .collect();
        listed.on_event::<k8s_openapi::api::core::v1::Secret>(&Ok(watcher::Event::Init));
        assert!(!listed.is_listed());
        listed.on_event::<k8s_openapi::api::core::v1::Secret>(&Ok(watcher::Event::InitDone));
        assert!(listed.is_listed());
        for w in waiters {
            tokio::time::timeout(std::time::Duration::from_secs(5), w)
                .await
                .expect("woken")
                .expect("task");
        }
        // Waiting after the fact returns at once.
        listed.wait().await;
    }
}
