//! The IscsiTarget controller. A target is reconciled again when a Lun it
//! lists changes (its array id appears, it is deleted) and when one of its
//! CHAP Secrets changes, and when its StorageArray appears or changes
//! labels (it may have joined this deployment's shard).

use std::sync::Arc;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Secret;
use kube::ResourceExt;
use kube::core::PartialObjectMeta;
use kube::runtime::reflector::ObjectRef;
use kube::runtime::{Controller, reflector, watcher};

use crate::crd::{IscsiTarget, Lun};

use super::context::Context;
use super::managed::{array_wakes, error_policy, reconcile, referencing, trigger_stream};

/// The targets (in `namespace`) whose CHAP uses Secret `secret`.
pub fn targets_using_secret(
    targets: &[Arc<IscsiTarget>],
    namespace: &str,
    secret: &str,
) -> Vec<ObjectRef<IscsiTarget>> {
    targets
        .iter()
        .filter(|t| t.namespace().as_deref() == Some(namespace))
        .filter(|t| {
            t.spec.chap.as_ref().is_some_and(|c| {
                c.secret_ref.name == secret
                    || c.mutual_secret_ref
                        .as_ref()
                        .is_some_and(|m| m.name == secret)
            })
        })
        .map(|t| ObjectRef::from_obj(t.as_ref()))
        .collect()
}

/// Runs the IscsiTarget controller until `shutdown` resolves.
pub async fn run(
    ctx: Arc<Context>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let (reader, writer) = reflector::store::<IscsiTarget>();
    ctx.cluster.set_store(reader.clone());
    let controller = Controller::for_stream(
        trigger_stream(ctx.api::<IscsiTarget>(), writer, ctx.cluster.clone()),
        reader,
    );
    let by_lun = ctx.clone();
    let by_secret = controller.store();
    let by_array = ctx.clone();
    controller
        .watches_stream(array_wakes(&ctx), move |sa| {
            referencing::<IscsiTarget>(&by_array, &sa)
        })
        .watches(ctx.api::<Lun>(), watcher::Config::default(), move |lun| {
            // From the claims index: O(the targets listing it), not a scan.
            let ns = lun.namespace().unwrap_or_default();
            by_lun
                .cluster
                .targets_listing(&ns, &lun.name_any())
                .into_iter()
                .map(|t| ObjectRef::new(&t).within(&ns))
                .collect::<Vec<_>>()
        })
        // Secrets are watched by metadata only: the operator reads a CHAP
        // Secret's data when it reconciles and never keeps every Secret in
        // memory.
        .watches(
            ctx.api::<PartialObjectMeta<Secret>>(),
            watcher::Config::default(),
            move |secret| {
                targets_using_secret(
                    &by_secret.state(),
                    &secret.namespace().unwrap_or_default(),
                    &secret.name_any(),
                )
            },
        )
        .graceful_shutdown_on(shutdown)
        .run(reconcile::<IscsiTarget>, error_policy::<IscsiTarget>, ctx)
        .for_each(|result| async move {
            if let Err(e) = result {
                tracing::debug!(error = %e, "IscsiTarget reconcile");
            }
        })
        .await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::iscsi_target::ChapSettings;
    use crate::crd::shared::SecretRef;
    use kube::Resource;

    fn target(
        ns: &str,
        name: &str,
        luns: &[&str],
        chap: Option<(&str, Option<&str>)>,
    ) -> Arc<IscsiTarget> {
        let spec: crate::crd::IscsiTargetSpec = serde_json::from_value(serde_json::json!({
            "arrayRef": {"name": "a"}, "luns": luns
        }))
        .expect("spec");
        let mut t = IscsiTarget::new(name, spec);
        t.meta_mut().namespace = Some(ns.into());
        t.spec.chap = chap.map(|(s, m)| ChapSettings {
            secret_ref: SecretRef { name: s.into() },
            mutual_secret_ref: m.map(|m| SecretRef { name: m.into() }),
        });
        Arc::new(t)
    }

    fn names(refs: Vec<ObjectRef<IscsiTarget>>) -> Vec<String> {
        let mut n: Vec<String> = refs.into_iter().map(|r| r.name).collect();
        n.sort();
        n
    }

    #[test]
    fn a_secret_change_wakes_the_targets_whose_chap_uses_it() {
        let all = vec![
            target("a", "t1", &[], Some(("chap", None))),
            target("a", "t2", &[], Some(("other", Some("chap")))),
            target("a", "t3", &[], None),
            target("b", "t4", &[], Some(("chap", None))),
        ];
        assert_eq!(names(targets_using_secret(&all, "a", "chap")), ["t1", "t2"]);
        assert!(targets_using_secret(&all, "a", "unrelated").is_empty());
    }
}
