//! One deterministic test per ownership failure found in issue 9 ("What was
//! found"), on both simulators where the scenario applies, over real HTTPS
//! on loopback. Each states the contract the engine must keep:
//!
//! - a partly made target is completed by the next pass, never stuck at
//!   `AlreadyExists` on its own array object, and deleted cleanly;
//! - a create whose record was lost (the `succeeded` write failed, or the
//!   create's answer was lost) is still deleted with its object;
//! - a copied manifest never renames or deletes the original's LUN: the copy
//!   gets its own LUN or stops at `Conflict` without a mutating call;
//! - a re-pointed `external-name` with a stale `succeeded` record deletes no
//!   foreign LUN;
//! - a create the array keeps refusing is retried at the controller's
//!   backoff pace (5 s doubling to 5 min), with a condition naming the field;
//! - a recreate after the LUN vanished makes one LUN, even when its record
//!   is lost;
//! - an old unresolved `pending` never adopts a same-named LUN made later by
//!   someone else;
//! - a vendor rule (NGX cannot clone a Lun) refuses the spec before any
//!   write, annotations included.

mod chaos_support;

use std::time::Duration;

use array_operator::controller::backoff::Backoff;
use array_operator::crd::shared::{
    ANNOTATION_CREATE_PENDING, ANNOTATION_CREATE_SUCCEEDED, ANNOTATION_EXTERNAL_NAME,
};
use array_operator::crd::storage_array::Vendor;
use array_operator::sim::faults::{FaultAction, FaultRule};
use chaos_support::cluster::{AnnotateFault, FakeCluster};
use chaos_support::driver::{Driver, Kind, NS, Pass, Verdict};
use chaos_support::sims::Sim;
use chaos_support::specs::{self, GIB};

struct Env {
    sim: Sim,
    d: Driver,
}

impl Env {
    async fn new(vendor: Vendor) -> Env {
        let sim = Sim::start(vendor).await;
        let d = Driver::connect(sim.config(), FakeCluster::default()).await;
        Env { sim, d }
    }

    async fn pass(&self, kind: Kind, name: &str) -> Pass {
        self.d
            .pass(kind, name)
            .await
            .unwrap_or_else(|| panic!("{kind:?} {name} exists"))
    }

    /// Deletes the object and runs passes (each on a fresh view) until it
    /// is gone; panics with the last condition if it is still there.
    async fn delete_until_gone(&self, kind: Kind, name: &str) {
        match kind {
            Kind::Lun => self.d.cluster.delete_lun(NS, name),
            Kind::Target => self.d.cluster.delete_target(NS, name),
        }
        let mut last = None;
        for _ in 0..3 {
            self.d.resync();
            match self.d.pass(kind, name).await {
                None => return,
                Some(p) if p.verdict == Verdict::Removed => return,
                Some(p) => last = Some(p),
            }
        }
        panic!("{kind:?} {name} was not deleted after three passes: {last:?}");
    }

    fn lun_annotation(&self, name: &str, key: &str) -> Option<String> {
        self.d
            .cluster
            .lun(NS, name)
            .and_then(|l| l.metadata.annotations)
            .and_then(|a| a.get(key).cloned())
    }
}

fn assert_ready(p: &Pass, what: &str) {
    let ok = p.ready.as_ref().is_some_and(|c| c.status == "True")
        && p.synced.as_ref().is_some_and(|c| c.status == "True");
    assert!(
        ok,
        "{what}: expected Ready and Synced, got {:?}\nReady {:?}\nSynced {:?}\nEvents {:?}",
        p.verdict, p.ready, p.synced, p.events
    );
}

macro_rules! both_vendors {
    ($($name:ident),* $(,)?) => {
        mod ngx {
            $( #[tokio::test] async fn $name() { super::$name(super::Vendor::NgxStorage).await } )*
        }
        mod synology {
            $( #[tokio::test] async fn $name() { super::$name(super::Vendor::Synology).await } )*
        }
    };
}

both_vendors!(
    a_partly_created_target_is_completed_by_the_next_pass_and_deleted_cleanly,
    a_lun_whose_succeeded_record_failed_is_deleted_with_its_object,
    a_lun_whose_create_answer_was_lost_is_deleted_with_its_object,
    a_copied_manifest_never_renames_or_deletes_the_original_lun,
    a_repointed_external_name_with_a_stale_record_deletes_no_foreign_lun,
    a_recreate_after_the_lun_vanished_makes_one_lun_even_when_its_record_is_lost,
    an_old_unresolved_pending_never_adopts_a_same_named_lun_made_later,
);

/// NGX: the target is made, then its own auth group (for CHAP) fails.
/// DSM: `Target.create` succeeds, then `Target.set` (the header digest)
/// fails.
async fn a_partly_created_target_is_completed_by_the_next_pass_and_deleted_cleanly(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let mut spec = specs::target(&[], None);
    match vendor {
        Vendor::NgxStorage => {
            env.d
                .cluster
                .put_chap_secret(NS, "chap", "initiator1", "Partial-Chap-1234", "1");
            spec = specs::target(&[], Some("chap"));
        }
        Vendor::Synology => spec.header_digest = Some(true),
    }
    env.d.cluster.apply_target(NS, "pt", spec);
    env.sim.faults().arm(FaultRule::once(
        env.sim.target_second_step_op(),
        1,
        FaultAction::ErrorCode(env.sim.plain_error_code()),
    ));
    let first = env.pass(Kind::Target, "pt").await;
    assert_eq!(
        env.sim.targets_named("pt"),
        1,
        "the first step made the target: {first:?}"
    );
    assert!(
        !env.sim.target_second_step_done("pt"),
        "the second step was refused"
    );

    env.d.resync();
    let second = env.pass(Kind::Target, "pt").await;
    assert_ne!(
        second.synced.as_ref().map(|c| c.reason.as_str()),
        Some("AlreadyExists"),
        "the object is stuck on its own target: {second:?}"
    );
    assert_ready(&second, "the pass after a partial create");
    assert!(
        env.sim.target_second_step_done("pt"),
        "the next pass completes the create"
    );
    assert_eq!(env.sim.targets_named("pt"), 1, "no second target");

    env.delete_until_gone(Kind::Target, "pt").await;
    assert_eq!(env.sim.targets_named("pt"), 0, "the target is deleted");
    assert!(
        env.sim.own_auth_groups().is_empty(),
        "no auth group is left behind: {:?}",
        env.sim.own_auth_groups()
    );
}

async fn a_lun_whose_succeeded_record_failed_is_deleted_with_its_object(vendor: Vendor) {
    let mut env = Env::new(vendor).await;
    env.d
        .cluster
        .fail_annotation(ANNOTATION_CREATE_SUCCEEDED, 1, AnnotateFault::Refuse);
    env.d.cluster.apply_lun(NS, "lr", specs::lun(&env.sim, 1));
    let first = env.pass(Kind::Lun, "lr").await;
    assert_eq!(env.sim.luns_named("lr"), 1, "the LUN was made: {first:?}");
    assert_eq!(env.d.cluster.annotate_failures(), 1, "the record failed");

    env.d.restart().await;
    env.delete_until_gone(Kind::Lun, "lr").await;
    assert_eq!(
        env.sim.luns_named("lr"),
        0,
        "deleting the object leaves no LUN behind"
    );
}

async fn a_lun_whose_create_answer_was_lost_is_deleted_with_its_object(vendor: Vendor) {
    let mut env = Env::new(vendor).await;
    env.sim.faults().arm(FaultRule::once(
        env.sim.lun_create_op(),
        1,
        FaultAction::DropAfterApply,
    ));
    env.d.cluster.apply_lun(NS, "la", specs::lun(&env.sim, 1));
    let first = env.pass(Kind::Lun, "la").await;
    assert_eq!(env.sim.luns_named("la"), 1, "the LUN was made: {first:?}");

    env.d.restart().await;
    env.delete_until_gone(Kind::Lun, "la").await;
    assert_eq!(
        env.sim.luns_named("la"),
        0,
        "deleting the object leaves no LUN behind"
    );
}

async fn a_copied_manifest_never_renames_or_deletes_the_original_lun(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let mut spec = specs::lun(&env.sim, 1);
    spec.name = Some("data-a".into());
    env.d.cluster.apply_lun(NS, "orig", spec);
    let first = env.pass(Kind::Lun, "orig").await;
    assert_ready(&first, "the original");
    let id = first.external_id.clone().expect("the original's LUN id");

    // `kubectl get lun orig -o yaml`, renamed, spec.name changed, applied.
    env.d
        .cluster
        .copy_lun(NS, "orig", "copy", |s| s.name = Some("data-b".into()))
        .expect("the copy is made");
    let before = env.sim.mutating_calls().len();
    let copy = env.pass(Kind::Lun, "copy").await;
    let after = env.sim.mutating_calls();
    let lun = env.sim.lun(&id).expect("the original LUN still exists");
    assert_eq!(lun.name, "data-a", "the original LUN was renamed: {copy:?}");
    let conflict = copy.synced.as_ref().is_some_and(|c| {
        c.status == "False" && c.reason == "Conflict" && c.message.contains("orig")
    });
    if conflict {
        assert_eq!(
            &after[before..],
            &[] as &[String],
            "a Conflict makes no mutating call"
        );
    } else {
        let own = copy.external_id.clone();
        assert!(
            own.as_ref().is_some_and(|o| *o != id),
            "the copy must get its own LUN or Synced=False reason Conflict naming Lun orig; got {copy:?}"
        );
        assert_eq!(env.sim.luns_named("data-b"), 1, "the copy's own LUN");
    }

    env.delete_until_gone(Kind::Lun, "copy").await;
    let lun = env
        .sim
        .lun(&id)
        .expect("deleting the copy left the original LUN");
    assert_eq!(lun.name, "data-a");

    env.d.resync();
    let again = env.pass(Kind::Lun, "orig").await;
    assert_ready(&again, "the original after the copy is gone");
    assert_eq!(again.external_id.as_deref(), Some(id.as_str()));
    assert_eq!(env.sim.luns_named("data-a"), 1, "no LUN recreated");
}

async fn a_repointed_external_name_with_a_stale_record_deletes_no_foreign_lun(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let foreign = env.d.create_foreign_lun("foreign-a", GIB).await;
    env.d.cluster.apply_lun(NS, "mine", specs::lun(&env.sim, 1));
    let first = env.pass(Kind::Lun, "mine").await;
    assert_ready(&first, "the operator's own LUN");
    assert!(
        env.lun_annotation("mine", ANNOTATION_CREATE_SUCCEEDED)
            .is_some(),
        "the create is recorded"
    );

    // A user points the object at another LUN; the record stays.
    env.d
        .cluster
        .user_annotate_lun(NS, "mine", ANNOTATION_EXTERNAL_NAME, &foreign);
    env.d.resync();
    let _ = env.pass(Kind::Lun, "mine").await;
    env.delete_until_gone(Kind::Lun, "mine").await;
    assert!(
        env.sim.lun(&foreign).is_some(),
        "the foreign LUN {foreign} was deleted"
    );
}

async fn a_recreate_after_the_lun_vanished_makes_one_lun_even_when_its_record_is_lost(
    vendor: Vendor,
) {
    let mut env = Env::new(vendor).await;
    env.d.cluster.apply_lun(NS, "rc", specs::lun(&env.sim, 1));
    let first = env.pass(Kind::Lun, "rc").await;
    assert_ready(&first, "the first create");
    let id = first.external_id.clone().expect("id");
    env.sim.remove_lun_out_of_band(&id);

    // The recreate's record is lost: the operator died between the create
    // call and its record.
    env.d
        .cluster
        .fail_annotation(ANNOTATION_CREATE_SUCCEEDED, 1, AnnotateFault::Refuse);
    env.d.resync();
    let _ = env.pass(Kind::Lun, "rc").await;
    assert_eq!(env.sim.luns_named("rc"), 1, "the LUN was made again");

    env.d.restart().await;
    let mut last = None;
    for _ in 0..2 {
        env.d.resync();
        last = Some(env.pass(Kind::Lun, "rc").await);
    }
    assert_eq!(env.sim.luns_named("rc"), 1, "no second LUN");
    let last = last.expect("passes ran");
    assert_ready(&last, "after the restart");
    let now = last.external_id.expect("id");
    assert!(env.sim.lun(&now).is_some(), "it records the LUN it made");
}

async fn an_old_unresolved_pending_never_adopts_a_same_named_lun_made_later(vendor: Vendor) {
    let mut env = Env::new(vendor).await;
    // The pending record is written but its answer is lost, so the
    // operator stops before the create call: a pending that nothing
    // settles.
    env.d
        .cluster
        .fail_annotation(ANNOTATION_CREATE_PENDING, 1, AnnotateFault::ApplyThenFail);
    env.d.cluster.apply_lun(NS, "pd", specs::lun(&env.sim, 1));
    let _ = env.pass(Kind::Lun, "pd").await;
    assert_eq!(env.sim.luns_named("pd"), 0, "nothing was made");
    assert!(
        env.lun_annotation("pd", ANNOTATION_CREATE_PENDING)
            .is_some()
    );

    // A day later (the wall clock the record uses cannot be paused, so the
    // record is aged instead), another admin makes a LUN of that name.
    let day_ago = (chrono::Utc::now() - chrono::Duration::days(1))
        .to_rfc3339_opts(chrono::SecondsFormat::Nanos, true);
    env.d
        .cluster
        .user_annotate_lun(NS, "pd", ANNOTATION_CREATE_PENDING, &day_ago);
    let foreign = env.d.create_foreign_lun("pd", 2 * GIB).await;
    let fingerprint = env.sim.lun(&foreign).expect("foreign").fingerprint;

    env.d.restart().await;
    let p = env.pass(Kind::Lun, "pd").await;
    assert_ne!(
        p.external_id.as_deref(),
        Some(foreign.as_str()),
        "the foreign LUN was adopted: {p:?}"
    );
    assert_ne!(
        env.lun_annotation("pd", ANNOTATION_EXTERNAL_NAME)
            .as_deref(),
        Some(foreign.as_str()),
        "the foreign LUN was recorded as the object's"
    );
    env.delete_until_gone(Kind::Lun, "pd").await;
    assert_eq!(
        env.sim.lun(&foreign).map(|l| l.fingerprint),
        Some(fingerprint),
        "the foreign LUN was changed or deleted"
    );
}

/// How many create calls the controller's backoff allows in `window` for
/// an object that fails every time: one at the start, then one per backoff
/// wait (5 s doubling to 5 min).
fn backoff_allows(window: Duration) -> usize {
    let b = Backoff::default();
    let mut t = Duration::ZERO;
    let mut n = 0;
    while t < window {
        n += 1;
        t += b.failed("x");
    }
    n
}

/// A Lun naming a pool (NGX) or volume (DSM) the array does not have: the
/// array refuses every create. Over ten simulated minutes, the controller
/// (requeue after `Backoff`, and at once when its own write wakes the
/// watch) must reach the array only at the backoff's pace.
async fn a_failing_create_backs_off_exponentially(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let (placement, field) = env.sim.missing_placement();
    let mut spec = specs::lun(&env.sim, 1);
    (spec.location, spec.pool) = placement;
    env.d.cluster.apply_lun(NS, "nospace", spec);
    let create = env.sim.lun_create_op();
    env.sim.log().clear();

    let window = Duration::from_secs(600);
    let backoff = Backoff::default();
    let start = tokio::time::Instant::now();
    let mut passes = 0;
    let mut last = None;
    // A bound on the loop only: an engine that wakes itself at once would
    // otherwise spin forever in simulated time.
    while start.elapsed() < window && passes < 300 {
        let p = env.pass(Kind::Lun, "nospace").await;
        passes += 1;
        let wait = match p.verdict {
            Verdict::Failed => backoff.failed("nospace"),
            Verdict::Waiting => Duration::from_secs(5),
            _ => {
                backoff.succeeded("nospace");
                Duration::from_secs(3600)
            }
        };
        let woke = p.woke;
        last = Some(p);
        tokio::time::advance(if woke { Duration::ZERO } else { wait }).await;
    }
    let creates = env.sim.log().count(&create);
    let allowed = backoff_allows(window);
    let last = last.expect("a pass ran");
    let message = last.synced.as_ref().map(|c| c.message.clone());
    println!(
        "{vendor:?}: {passes} passes and {creates} create calls in {}s simulated (backoff allows {allowed}); last Synced {:?}",
        start.elapsed().as_secs(),
        last.synced
    );
    assert!(
        creates <= allowed,
        "{creates} create calls in {window:?} ({passes} passes); the backoff allows {allowed}"
    );
    assert!(
        message.as_ref().is_some_and(|m| m.contains(field)),
        "the condition names {field}: {message:?}"
    );
}

/// Issue 8: an InvalidSpec object (here the other vendor's placement,
/// which only the adapter's rules can refuse) is reconciled a few times a
/// minute at most, writes nothing, and sends nothing to the array: its
/// own status write does not wake it, and it is Stalled, so it backs off.
async fn an_invalid_spec_is_reconciled_a_few_times_a_minute_at_most(vendor: Vendor) {
    let env = Env::new(vendor).await;
    let mut spec = specs::lun(&env.sim, 1);
    (spec.location, spec.pool) = match vendor {
        Vendor::Synology => (None, Some("pool1".into())),
        Vendor::NgxStorage => (Some("/volume1".into()), None),
    };
    env.d.cluster.apply_lun(NS, "wrongvendor", spec);
    env.sim.log().clear();
    let window = Duration::from_secs(60);
    let backoff = Backoff::default();
    let start = tokio::time::Instant::now();
    let mut passes = 0;
    let mut last = None;
    while start.elapsed() < window && passes < 300 {
        let p = env.pass(Kind::Lun, "wrongvendor").await;
        passes += 1;
        let wait = match p.verdict {
            Verdict::Failed => backoff.failed("wrongvendor"),
            _ => Duration::from_secs(3600),
        };
        let woke = p.woke;
        last = Some(p);
        tokio::time::advance(if woke { Duration::ZERO } else { wait }).await;
    }
    println!("{vendor:?}: {passes} passes in 60 s simulated");
    assert!(passes <= 5, "{passes} reconciles in a minute");
    assert!(
        env.sim.mutating_calls().is_empty(),
        "{:?}",
        env.sim.mutating_calls()
    );
    let synced = last.and_then(|p| p.synced).expect("Synced");
    assert_eq!(synced.reason, "InvalidSpec", "{synced:?}");
    assert!(synced.message.contains("spec."), "{synced:?}");
}

#[tokio::test(start_paused = true)]
async fn an_invalid_spec_is_reconciled_a_few_times_a_minute_at_most_ngx() {
    an_invalid_spec_is_reconciled_a_few_times_a_minute_at_most(Vendor::NgxStorage).await;
}

#[tokio::test(start_paused = true)]
async fn an_invalid_spec_is_reconciled_a_few_times_a_minute_at_most_synology() {
    an_invalid_spec_is_reconciled_a_few_times_a_minute_at_most(Vendor::Synology).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_create_backs_off_exponentially_ngx() {
    a_failing_create_backs_off_exponentially(Vendor::NgxStorage).await;
}

#[tokio::test(start_paused = true)]
async fn a_failing_create_backs_off_exponentially_synology() {
    a_failing_create_backs_off_exponentially(Vendor::Synology).await;
}

/// NGXStorage clones snapshots, not LUNs: a Lun cloning another Lun is
/// refused by the vendor's rules before any write, the pending annotation
/// included, with a condition naming the field.
#[tokio::test]
async fn an_ngx_clone_of_a_lun_is_refused_before_any_write() {
    use array_operator::crd::lun::LunSource;
    use array_operator::crd::shared::LocalObjectRef;
    let env = Env::new(Vendor::NgxStorage).await;
    env.d.cluster.apply_lun(NS, "base", specs::lun(&env.sim, 1));
    assert_ready(&env.pass(Kind::Lun, "base").await, "the source Lun");
    let mut spec = specs::lun(&env.sim, 1);
    spec.source = Some(LunSource {
        lun_ref: Some(LocalObjectRef {
            name: "base".into(),
        }),
        snapshot: None,
    });
    env.d.cluster.apply_lun(NS, "clone", spec);
    let writes = env.d.cluster.annotate_calls();
    let before = env.sim.mutating_calls().len();
    let p = env.pass(Kind::Lun, "clone").await;
    assert_eq!(
        env.d.cluster.annotate_calls(),
        writes,
        "an annotation was written for a spec the vendor refuses: {p:?}"
    );
    assert_eq!(env.sim.mutating_calls().len(), before, "{p:?}");
    let synced = p.synced.clone().expect("Synced");
    assert_eq!(synced.status, "False", "{p:?}");
    assert!(
        synced.message.contains("spec.source"),
        "the condition names the field: {synced:?}"
    );
}
