//! SnapshotSchedule against both simulators over HTTPS on loopback, with
//! the engine's controllable clock: days of schedule in milliseconds, no
//! sleeps. Luns are created by the real Lun lifecycle; an in-memory store
//! stands in for the Kubernetes API (status writes are stored by hand, so
//! a test can also "lose" one, as a crash would).

use std::collections::BTreeMap;
use std::time::Duration;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{ArrayRef, DeletionPolicy, ManagementPolicy};
use array_operator::crd::snapshot_schedule::{Retention, SnapshotSettings};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::{Lun, SnapshotSchedule, SnapshotScheduleSpec, SnapshotScheduleStatus};
use array_operator::engine::clock::{Clock, ManualClock};
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::snapshot_schedule::{self, ScheduleOutcome, schedule_event};
use array_operator::engine::{self, ArrayHandle, Cleanup, ObservationCache, Progress};
use array_operator::model::SecretString;
use array_operator::reconcile::schedule::Mark;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use array_operator::sim::faults::{FaultAction, FaultRule};
use array_operator::sim::ngx::{NgxSim, SimConfig};
use chrono::{DateTime, TimeZone, Utc};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{LabelSelector, Time};
use kube::Resource;

const NS: &str = "default";
const NGX_TOKEN: &str = "sched-token-1234";
const UID: &str = "6f1c2b7e-0d9a-4c55-8e21-9b3f4a7c1d20";
const HOUR: Duration = Duration::from_secs(3600);

fn utc(y: i32, mo: u32, d: u32, h: u32, mi: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, mo, d, h, mi, 0)
        .single()
        .expect("valid time")
}

fn time(t: DateTime<Utc>) -> Time {
    Time(k8s_openapi::jiff::Timestamp::from_second(t.timestamp()).expect("timestamp"))
}

/// A snapshot as a test reads it from either simulator.
#[derive(Clone, Debug)]
struct Snap {
    id: String,
    lun_id: String,
    label: String,
}

enum Sim {
    Ngx(NgxSim),
    Dsm(DsmSim),
}

impl Sim {
    async fn start(vendor: Vendor) -> Sim {
        match vendor {
            Vendor::NgxStorage => Sim::Ngx(
                NgxSim::start(SimConfig {
                    token: NGX_TOKEN.into(),
                    ..SimConfig::default()
                })
                .await
                .expect("NGX simulator"),
            ),
            Vendor::Synology => Sim::Dsm(
                array_operator::sim::dsm::start(DsmSimConfig::default())
                    .await
                    .expect("DSM simulator"),
            ),
        }
    }

    fn config(&self) -> BackendConfig {
        let (vendor, endpoint, ca, credentials, owner) = match self {
            Sim::Ngx(s) => (
                Vendor::NgxStorage,
                s.base_url(),
                s.ca_pem(),
                Credentials::Token(SecretString::new(NGX_TOKEN)),
                Some(s.owners()[0].clone()),
            ),
            Sim::Dsm(s) => (
                Vendor::Synology,
                s.base_url(),
                s.ca_pem().map(str::to_string),
                Credentials::UserPassword {
                    username: DEFAULT_USERNAME.into(),
                    password: SecretString::new(DEFAULT_PASSWORD),
                },
                None,
            ),
        };
        BackendConfig {
            vendor,
            endpoint,
            secondary_endpoint: None,
            credentials,
            transport: TransportConfig {
                ca_bundle_pem: ca,
                insecure_skip_verify: false,
                request_timeout: Duration::from_secs(5),
                max_concurrent_requests: 4,
            },
            ngx_owner: owner,
            resize_mode: ResizeMode::Absolute,
            session_name: "snapshot-schedule".into(),
        }
    }

    /// Every snapshot of the LUN `lun_id`; `label` is the description on
    /// DSM and the name on NGX (where the mark lives).
    fn snapshots(&self, lun_id: &str) -> Vec<Snap> {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.snapshots
                    .values()
                    .filter(|x| x.vol_id == lun_id)
                    .map(|x| Snap {
                        id: x.id.clone(),
                        lun_id: x.vol_id.clone(),
                        label: x.name.clone(),
                    })
                    .collect()
            }),
            Sim::Dsm(s) => s.state().read(|st| {
                st.snapshots_of(lun_id)
                    .iter()
                    .map(|x| Snap {
                        id: x.uuid.clone(),
                        lun_id: x.lun_uuid.clone(),
                        label: x.description.clone(),
                    })
                    .collect()
            }),
        }
    }

    fn marks(&self, lun_id: &str, uid: &str) -> Vec<DateTime<Utc>> {
        let mut at: Vec<DateTime<Utc>> = self
            .snapshots(lun_id)
            .iter()
            .filter_map(|s| match self {
                Sim::Ngx(_) => Mark::from_snapshot_name(&s.label),
                Sim::Dsm(_) => Mark::from_description(&s.label),
            })
            .filter(|m| m.uid == uid)
            .map(|m| m.at)
            .collect();
        at.sort();
        at
    }

    /// Puts a snapshot on the array behind the operator's back; returns
    /// its id. `label` is the description (DSM) or name (NGX).
    fn put_snapshot(&self, lun_id: &str, label: &str, locked: bool, held: bool) -> String {
        let id = format!("{:040x}", rand::random::<u128>());
        match self {
            Sim::Ngx(s) => s.state().write(|st| {
                st.snapshots.insert(
                    id.clone(),
                    array_operator::sim::ngx::state::SimSnapshot {
                        id: id.clone(),
                        name: label.to_string(),
                        vol_id: lun_id.to_string(),
                        size_bytes: 1 << 30,
                        created: 1_700_000_000,
                        reserved: 0,
                        binded: held,
                    },
                );
            }),
            Sim::Dsm(s) => s.state().update(|st| {
                let next = st
                    .snapshots_of(lun_id)
                    .iter()
                    .map(|x| x.snapshot_id)
                    .max()
                    .unwrap_or(0)
                    + 1;
                st.snapshots
                    .push(array_operator::sim::dsm::state::SimSnapshot {
                        uuid: id.clone(),
                        snapshot_id: next,
                        lun_uuid: lun_id.to_string(),
                        name: format!("SnapShot-{next}"),
                        description: label.to_string(),
                        create_time: 1_700_000_000,
                        locked,
                        app_consistent: false,
                        taken_by: "user".into(),
                        locked_app_keys: if held {
                            vec!["SnapshotReplication-synodr-plan1".into()]
                        } else {
                            Vec::new()
                        },
                    });
            }),
        }
        id
    }

    fn native_schedule(&self, lun_id: &str) -> Option<(String, u64)> {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.schedules
                    .get(lun_id)
                    .map(|x| (x.cron.clone(), x.keep_max))
            }),
            Sim::Dsm(_) => None,
        }
    }

    fn arm_take_fault(&self, nth: u64, action: FaultAction) {
        match self {
            Sim::Ngx(s) => s.faults().arm(FaultRule::once(
                s.op(array_operator::array::ngxstorage::Endpoint::SnapshotCreate),
                nth,
                action,
            )),
            Sim::Dsm(s) => s.faults().arm(FaultRule::once(
                "SYNO.Core.ISCSI.LUN.take_snapshot",
                nth,
                action,
            )),
        }
    }
}

struct Env {
    sim: Sim,
    cluster: MemoryCluster,
    handle: ArrayHandle,
    clock: ManualClock,
    schedule: SnapshotSchedule,
    lun_names: Vec<String>,
}

impl Env {
    async fn new(vendor: Vendor, start: DateTime<Utc>) -> Env {
        Env::with(Sim::start(vendor).await, start).await
    }

    async fn with(sim: Sim, start: DateTime<Utc>) -> Env {
        let backend = Backend::connect(sim.config())
            .await
            .expect("backend connects");
        let mut schedule = SnapshotSchedule::new("nightly", spec("0 * * * *", Some(3), None));
        schedule.meta_mut().namespace = Some(NS.into());
        schedule.meta_mut().uid = Some(UID.into());
        schedule.meta_mut().generation = Some(1);
        schedule.meta_mut().creation_timestamp = Some(time(start));
        Env {
            sim,
            cluster: MemoryCluster::default(),
            handle: ArrayHandle {
                key: "default/array".into(),
                backend,
                cache: ObservationCache::default(),
                resync: HOUR,
                dry_run: None,
            },
            clock: ManualClock::new(start),
            schedule,
            lun_names: Vec::new(),
        }
    }

    /// Creates a Lun object and its LUN on the array (the Lun lifecycle).
    async fn lun(&mut self, name: &str, labels: &[(&str, &str)]) -> String {
        let (location, pool) = match self.sim {
            Sim::Ngx(_) => (None, Some("pool1".to_string())),
            Sim::Dsm(_) => (Some("/volume1".to_string()), None),
        };
        let mut lun = Lun::new(
            name,
            LunSpec {
                array_ref: ArrayRef {
                    name: "array".into(),
                },
                name: None,
                size: Quantity("1Gi".into()),
                location,
                pool,
                thin_provisioning: true,
                description: None,
                synology: None,
                ngxstorage: None,
                source: None,
                management_policy: ManagementPolicy::Manage,
                deletion_policy: None,
            },
        );
        lun.meta_mut().namespace = Some(NS.into());
        lun.meta_mut().generation = Some(1);
        lun.meta_mut().uid = Some(format!("lun-uid-{name}"));
        lun.meta_mut().labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self.cluster.put_lun(lun);
        let stored = self.cluster.lun(NS, name).expect("lun");
        let out = engine::lifecycle::reconcile(&stored, &self.handle, &self.cluster).await;
        let mut stored = self.cluster.lun(NS, name).expect("lun");
        stored.status = Some(out.status);
        self.cluster.put_lun(stored);
        self.lun_names.push(name.to_string());
        self.lun_id(name)
    }

    fn lun_id(&self, name: &str) -> String {
        self.cluster
            .lun(NS, name)
            .and_then(|l| engine::lun_external_id(&l))
            .expect("the Lun has an array id")
    }

    fn relabel(&self, name: &str, labels: &[(&str, &str)]) {
        let mut lun = self.cluster.lun(NS, name).expect("lun");
        lun.meta_mut().labels = Some(
            labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        );
        self.cluster.put_lun(lun);
    }

    fn luns(&self) -> Vec<Lun> {
        self.lun_names
            .iter()
            .filter_map(|n| self.cluster.lun(NS, n))
            .collect()
    }

    /// A spec change, as `kubectl apply` makes it.
    fn apply(&mut self, change: impl FnOnce(&mut SnapshotScheduleSpec)) {
        change(&mut self.schedule.spec);
        let g = self.schedule.metadata.generation.unwrap_or(0);
        self.schedule.meta_mut().generation = Some(g + 1);
    }

    /// One reconcile at the clock's time; the status is stored.
    async fn run(&mut self) -> ScheduleOutcome {
        let out = self.run_without_status_write().await;
        self.schedule.status = Some(out.outcome.status.clone());
        out
    }

    /// One reconcile whose status write is lost (a crash just after it).
    async fn run_without_status_write(&self) -> ScheduleOutcome {
        snapshot_schedule::reconcile(&self.schedule, &self.handle, &self.luns(), &self.clock).await
    }

    /// Steps the clock `hours` times by one hour, reconciling each time.
    async fn hours(&mut self, hours: u32) -> Vec<ScheduleOutcome> {
        let mut outs = Vec::new();
        for _ in 0..hours {
            self.clock.advance(HOUR);
            outs.push(self.run().await);
        }
        outs
    }

    fn status(&self) -> SnapshotScheduleStatus {
        self.schedule.status.clone().expect("a status")
    }

    fn count(&self, lun_id: &str) -> usize {
        self.sim.marks(lun_id, UID).len()
    }
}

fn spec(cron: &str, max_count: Option<i32>, max_age: Option<&str>) -> SnapshotScheduleSpec {
    SnapshotScheduleSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        schedule: cron.into(),
        time_zone: "UTC".into(),
        lun_selector: None,
        luns: Some(vec!["db".into(), "logs".into()]),
        retention: Retention {
            max_count,
            max_age: max_age.map(str::to_string),
            prune_locked: false,
        },
        suspend: false,
        starting_deadline: None,
        snapshot: None,
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}

fn condition(status: &SnapshotScheduleStatus, type_: &str) -> (String, String, String) {
    status
        .common
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone(), c.message.clone()))
        .unwrap_or_else(|| panic!("no {type_} condition in {status:?}"))
}

fn count_events(out: &ScheduleOutcome, reason: &str) -> usize {
    out.outcome
        .events
        .iter()
        .filter(|e| e.reason == reason)
        .count()
}

/// On NGX the hourly `0 * * * *` fits the native schedule; a step forces
/// the operator-driven mode, which is what these tests exercise on both.
fn operator_cron(vendor: Vendor) -> &'static str {
    match vendor {
        Vendor::NgxStorage => "0 */1 * * *",
        Vendor::Synology => "0 * * * *",
    }
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
    takes_one_marked_snapshot_per_lun_per_due_time_and_prunes_by_count,
    prunes_by_age,
    never_prunes_foreign_copied_locked_or_needed_snapshots,
    no_duplicate_after_a_restart_at_the_due_time,
    a_run_cut_part_way_is_completed_without_duplicates,
    a_missed_run_is_taken_inside_the_grace_window_and_counted_outside_it,
    lun_selection_is_live,
    suspend_takes_and_prunes_nothing_and_resumes_without_catching_up,
    deletion_leaves_every_snapshot_in_place,
    luns_that_do_not_exist_yet_are_named_and_not_ready,
    a_cron_value_the_schema_lets_through_is_invalid_spec,
    due_times_follow_dst_in_a_non_utc_zone,
    runs_with_no_lun_selected_are_skipped_not_missed,
);

async fn takes_one_marked_snapshot_per_lun_per_due_time_and_prunes_by_count(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = operator_cron(vendor).into());
    let db = env.lun("db", &[]).await;
    let logs = env.lun("logs", &[]).await;
    // Created at 09:30: nothing is due yet.
    let out = env.run().await;
    assert_eq!(out.outcome.progress, Progress::Converged);
    assert_eq!(env.count(&db), 0);
    assert_eq!(out.wake_at, Some(utc(2026, 11, 30, 10, 0)));
    env.clock.set(utc(2026, 11, 30, 10, 0));
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 2);
    // A second pass at the same time takes nothing more.
    let again = env.run().await;
    assert_eq!(count_events(&again, schedule_event::SNAPSHOT_TAKEN), 0);
    assert_eq!((env.count(&db), env.count(&logs)), (1, 1));
    // Five more hours: three kept per LUN (maxCount 3), the oldest pruned.
    let outs = env.hours(5).await;
    let pruned: usize = outs
        .iter()
        .map(|o| count_events(o, schedule_event::SNAPSHOT_PRUNED))
        .sum();
    assert_eq!(pruned, 6, "three pruned per LUN");
    assert_eq!(
        env.sim.marks(&db, UID),
        vec![
            utc(2026, 11, 30, 13, 0),
            utc(2026, 11, 30, 14, 0),
            utc(2026, 11, 30, 15, 0)
        ]
    );
    let st = env.status();
    assert_eq!(st.mode.as_deref(), Some("Operator"));
    assert_eq!(st.lun_count, 2);
    assert_eq!(st.missed_runs, 0);
    assert_eq!(st.last_snapshot_time, Some(time(utc(2026, 11, 30, 15, 0))));
    assert_eq!(st.next_snapshot_time, Some(time(utc(2026, 11, 30, 16, 0))));
    let per_lun: BTreeMap<&str, i32> = st
        .snapshots
        .iter()
        .map(|l| (l.lun.as_str(), l.count))
        .collect();
    assert_eq!(per_lun, BTreeMap::from([("db", 3), ("logs", 3)]));
    let newest = st.snapshots[0].newest_id.clone().expect("newest id");
    assert!(
        env.sim.snapshots(&db).iter().any(|s| s.id == newest),
        "newest id {newest} is on the array"
    );
    assert_eq!(condition(&st, "Ready").0, "True");
    assert_eq!(condition(&st, "Synced").0, "True");
    assert!(
        st.common
            .conditions
            .iter()
            .all(|c| c.observed_generation == Some(2))
    );
}

async fn prunes_by_age(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = "0 * * * *".into();
        s.retention = Retention {
            max_count: None,
            max_age: Some("3h".into()),
            prune_locked: false,
        };
    });
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    env.hours(7).await;
    // At 16:30 the runs of 13:00 (3h30m old) and before are past 3h.
    assert_eq!(
        env.sim.marks(&db, UID),
        vec![
            utc(2026, 11, 30, 14, 0),
            utc(2026, 11, 30, 15, 0),
            utc(2026, 11, 30, 16, 0)
        ]
    );
    // maxAge has no native equivalent: operator-driven on both vendors.
    assert_eq!(env.status().mode.as_deref(), Some("Operator"));
}

async fn never_prunes_foreign_copied_locked_or_needed_snapshots(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.retention.max_count = Some(1);
    });
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    let old = utc(2026, 11, 1, 0, 0);
    let mark = |uid: &str| Mark {
        namespace: NS.into(),
        name: "nightly".into(),
        uid: uid.into(),
        at: old,
    };
    let label = |m: &Mark| match vendor {
        Vendor::NgxStorage => m.snapshot_name(),
        Vendor::Synology => m.describe(None),
    };
    let foreign = env.sim.put_snapshot(
        &db,
        match vendor {
            Vendor::NgxStorage => "manual-before-upgrade",
            Vendor::Synology => "taken by hand",
        },
        false,
        false,
    );
    // A copy of the schedule (same namespace and name, another UID).
    let copied = env.sim.put_snapshot(
        &db,
        &label(&mark("0b6e4b8e-7d2a-4f39-9a55-3c1f1d2b9e01")),
        false,
        false,
    );
    // This schedule's own, but still needed (DSM: a replication's base;
    // NGX: a clone bound to it).
    let needed = env.sim.put_snapshot(&db, &label(&mark(UID)), false, true);
    let mut protected = vec![foreign.clone(), copied.clone(), needed.clone()];
    if vendor == Vendor::Synology {
        let mut locked_mark = mark(UID);
        locked_mark.at = utc(2026, 11, 2, 0, 0);
        protected.push(env.sim.put_snapshot(&db, &label(&locked_mark), true, false));
    }
    let outs = env.hours(4).await;
    let ids: Vec<String> = env.sim.snapshots(&db).into_iter().map(|s| s.id).collect();
    for id in &protected {
        assert!(ids.contains(id), "{id} must survive retention: {ids:?}");
    }
    // Only this schedule's newest run remains of what it may prune.
    assert_eq!(ids.len(), protected.len() + 1, "{ids:?}");
    let st = env.status();
    assert!(
        condition(&st, "Ready")
            .2
            .contains("kept because they are locked or still needed"),
        "{st:?}"
    );
    let pruned: usize = outs
        .iter()
        .map(|o| count_events(o, schedule_event::SNAPSHOT_PRUNED))
        .sum();
    assert_eq!(pruned, 3 * 2, "three runs pruned on each LUN, nothing else");
    // pruneLocked lets the locked one go (DSM: NGX has no lock).
    if vendor == Vendor::Synology {
        env.apply(|s| s.retention.prune_locked = true);
        env.hours(1).await;
        let ids: Vec<String> = env.sim.snapshots(&db).into_iter().map(|s| s.id).collect();
        assert!(!ids.contains(&protected[3]), "locked own snapshot pruned");
        for id in &protected[..3] {
            assert!(ids.contains(id));
        }
    }
}

async fn no_duplicate_after_a_restart_at_the_due_time(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = operator_cron(vendor).into());
    let db = env.lun("db", &[]).await;
    let logs = env.lun("logs", &[]).await;
    env.run().await;
    env.clock.set(utc(2026, 11, 30, 10, 0));
    // The snapshots are taken, then the operator dies before its status
    // write; a new leader (no memory) reconciles at the same instant and a
    // minute later.
    let first = env.run_without_status_write().await;
    assert_eq!(count_events(&first, schedule_event::SNAPSHOT_TAKEN), 2);
    let restarted = env.run().await;
    assert_eq!(count_events(&restarted, schedule_event::SNAPSHOT_TAKEN), 0);
    env.clock.advance(Duration::from_secs(60));
    env.run().await;
    assert_eq!((env.count(&db), env.count(&logs)), (1, 1));
    assert_eq!(env.status().missed_runs, 0);
}

async fn a_run_cut_part_way_is_completed_without_duplicates(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = operator_cron(vendor).into());
    let db = env.lun("db", &[]).await;
    let logs = env.lun("logs", &[]).await;
    env.run().await;
    env.clock.set(utc(2026, 11, 30, 10, 0));
    // The first take happens but its answer is lost; the second is refused.
    env.sim.arm_take_fault(1, FaultAction::DropAfterApply);
    env.sim.arm_take_fault(2, FaultAction::DropBeforeApply);
    let cut = env.run().await;
    assert_ne!(cut.outcome.progress, Progress::Converged);
    let (synced, _, message) = condition(&env.status(), "Synced");
    assert_eq!(synced, "False");
    assert!(
        message.starts_with("Lun db: TakeSnapshot on default/array"),
        "{message}"
    );
    assert_eq!(
        env.status().last_schedule_time,
        None,
        "the run is not handled yet"
    );
    // The retry (after the backoff) completes the run for the LUN that lacks it.
    env.clock.advance(Duration::from_secs(30));
    let retry = env.run().await;
    assert_eq!(retry.outcome.progress, Progress::Converged, "{retry:?}");
    assert_eq!((env.count(&db), env.count(&logs)), (1, 1));
    assert_eq!(env.status().missed_runs, 0);
}

async fn a_missed_run_is_taken_inside_the_grace_window_and_counted_outside_it(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = operator_cron(vendor).into());
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    env.clock.set(utc(2026, 11, 30, 10, 0));
    env.run().await;
    // The operator is down from 10:00 to 14:20: 11, 12 and 13 are missed,
    // 14:00 is 20 minutes late, inside the default 1h deadline.
    env.clock.set(utc(2026, 11, 30, 14, 20));
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 2);
    assert_eq!(count_events(&out, schedule_event::MISSED_RUN), 1);
    assert_eq!(env.status().missed_runs, 3);
    assert_eq!(
        env.sim.marks(&db, UID),
        vec![utc(2026, 11, 30, 10, 0), utc(2026, 11, 30, 14, 0)]
    );
    // Down again until 18:30 with a 10-minute deadline: 15, 16, 17 and 18
    // are all missed, nothing is taken late.
    env.apply(|s| s.starting_deadline = Some("10m".into()));
    env.clock.set(utc(2026, 11, 30, 18, 30));
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 0);
    assert_eq!(env.status().missed_runs, 7);
    // Counted once: the next pass counts nothing more.
    env.clock.advance(Duration::from_secs(60));
    env.run().await;
    assert_eq!(env.status().missed_runs, 7);
    assert_eq!(env.count(&db), 2);
}

async fn lun_selection_is_live(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.luns = None;
        s.retention.max_count = Some(2);
        s.lun_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("tier".to_string(), "gold".to_string())])),
            match_expressions: None,
        });
    });
    let db = env.lun("db", &[("tier", "gold")]).await;
    let logs = env.lun("logs", &[("tier", "bronze")]).await;
    env.hours(1).await;
    assert_eq!((env.count(&db), env.count(&logs)), (1, 0));
    assert_eq!(env.status().lun_count, 1);
    // logs gains the label between due times: it joins at the next one.
    env.clock.advance(Duration::from_secs(600));
    env.relabel("logs", &[("tier", "gold")]);
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 0);
    env.clock.set(utc(2026, 11, 30, 11, 0));
    env.run().await;
    assert_eq!((env.count(&db), env.count(&logs)), (2, 1));
    // db loses it: no more snapshots, and its own are left alone even past
    // retention.
    env.relabel("db", &[]);
    env.hours(3).await;
    assert_eq!(env.count(&db), 2);
    assert_eq!(env.count(&logs), 2, "logs keeps maxCount 2");
    let st = env.status();
    assert_eq!(st.lun_count, 1);
    assert_eq!(st.snapshots.len(), 1);
    assert_eq!(st.snapshots[0].lun, "logs");
}

async fn suspend_takes_and_prunes_nothing_and_resumes_without_catching_up(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.retention.max_count = Some(1);
    });
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    env.hours(1).await;
    env.apply(|s| s.suspend = true);
    let outs = env.hours(3).await;
    assert!(outs.iter().all(|o| o.outcome.events.is_empty()), "{outs:?}");
    assert_eq!(env.count(&db), 1);
    let st = env.status();
    assert_eq!(st.next_snapshot_time, None);
    assert!(condition(&st, "Ready").2.contains("spec.suspend"));
    // Resumed at 13:40: the suspended runs are skipped, not missed, and
    // the next run is 14:00.
    env.clock.advance(Duration::from_secs(10 * 60));
    env.apply(|s| s.suspend = false);
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 0);
    assert_eq!(env.status().missed_runs, 0);
    env.clock.set(utc(2026, 11, 30, 14, 0));
    env.run().await;
    assert_eq!(env.sim.marks(&db, UID), vec![utc(2026, 11, 30, 14, 0)]);
}

async fn deletion_leaves_every_snapshot_in_place(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = operator_cron(vendor).into());
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    env.hours(2).await;
    let before = env.sim.snapshots(&db).len();
    assert_eq!(before, 2);
    match snapshot_schedule::cleanup(&env.schedule, Some(&env.handle)).await {
        Cleanup::Done { .. } => {}
        Cleanup::Held(o) => panic!("deletion held: {o:?}"),
    }
    assert_eq!(env.sim.snapshots(&db).len(), before);
    let all: Vec<Snap> = env.sim.snapshots(&db);
    assert!(all.iter().all(|s| s.lun_id == db));
}

async fn luns_that_do_not_exist_yet_are_named_and_not_ready(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.luns = Some(vec!["db".into(), "ghost".into()]);
    });
    let db = env.lun("db", &[]).await;
    let out = env.hours(1).await.pop().expect("one pass");
    assert_eq!(out.outcome.progress, Progress::Waiting);
    let (status, reason, message) = condition(&env.status(), "Ready");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Creating"));
    assert!(message.contains("Lun ghost does not exist"), "{message}");
    // The Luns that exist are still snapshotted.
    assert_eq!(env.count(&db), 1);
}

async fn a_cron_value_the_schema_lets_through_is_invalid_spec(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| s.schedule = "0 0 30 2 *".into());
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    let out = env.hours(1).await.pop().expect("one pass");
    assert_eq!(out.outcome.progress, Progress::Stalled);
    let (status, reason, message) = condition(&env.status(), "Synced");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "InvalidSpec"));
    assert!(message.starts_with("spec.schedule"), "{message}");
    assert_eq!(condition(&env.status(), "Stalled").0, "True");
    env.apply(|s| {
        s.schedule = "@daily".into();
        s.time_zone = "Europe/Nowhere".into();
    });
    env.run().await;
    assert!(
        condition(&env.status(), "Synced")
            .2
            .starts_with("spec.timeZone")
    );
    assert!(
        env.sim.snapshots(&db).is_empty(),
        "nothing reached the array"
    );
    // NGX has no snapshot lock: refused before any call.
    if vendor == Vendor::NgxStorage {
        env.apply(|s| {
            s.time_zone = "UTC".into();
            s.snapshot = Some(SnapshotSettings {
                locked: true,
                ..SnapshotSettings::default()
            });
        });
        env.run().await;
        let (_, reason, message) = condition(&env.status(), "Synced");
        assert_eq!(reason, "Unsupported");
        assert!(message.starts_with("spec.snapshot.locked"), "{message}");
    }
}

async fn due_times_follow_dst_in_a_non_utc_zone(vendor: Vendor) {
    // Europe/Berlin springs forward on 2026-03-29: 02:30 does not exist
    // that day and the run happens once, just after the gap.
    let mut env = Env::new(vendor, utc(2026, 3, 27, 12, 0)).await;
    env.apply(|s| {
        s.schedule = "30 2 * * *".into();
        s.time_zone = "Europe/Berlin".into();
        s.retention.max_count = Some(10);
    });
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    let mut takes = 0;
    for _ in 0..(4 * 24 * 4) {
        env.clock.advance(Duration::from_secs(15 * 60));
        let out = env.run().await;
        takes += count_events(&out, schedule_event::SNAPSHOT_TAKEN);
    }
    assert_eq!(
        env.sim.marks(&db, UID),
        vec![
            utc(2026, 3, 28, 1, 30),
            utc(2026, 3, 29, 1, 0),
            utc(2026, 3, 30, 0, 30),
            utc(2026, 3, 31, 0, 30)
        ]
    );
    assert_eq!(takes, 8);
    assert_eq!(env.status().mode.as_deref(), Some("Operator"));
    assert_eq!(env.clock.now(), utc(2026, 3, 31, 12, 0));
}

async fn runs_with_no_lun_selected_are_skipped_not_missed(vendor: Vendor) {
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.luns = None;
        s.lun_selector = Some(LabelSelector {
            match_labels: Some(BTreeMap::from([("backup".to_string(), "yes".to_string())])),
            match_expressions: None,
        });
    });
    let db = env.lun("db", &[]).await;
    // Five due times pass with nothing selected.
    let outs = env.hours(5).await;
    assert!(outs.iter().all(|o| o.outcome.events.is_empty()), "{outs:?}");
    assert_eq!(env.status().lun_count, 0);
    // db joins at 14:40: nothing is taken for 14:00 or before, and nothing
    // was missed; its first snapshot is for 15:00.
    env.clock.advance(Duration::from_secs(10 * 60));
    env.relabel("db", &[("backup", "yes")]);
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::SNAPSHOT_TAKEN), 0);
    env.clock.set(utc(2026, 11, 30, 15, 0));
    env.run().await;
    assert_eq!(env.sim.marks(&db, UID), vec![utc(2026, 11, 30, 15, 0)]);
    assert_eq!(env.status().missed_runs, 0);
}

// ---- NGXStorage native schedule ----

#[tokio::test]
async fn ngx_native_schedule_is_programmed_replaced_removed_and_falls_back() {
    let mut env = Env::new(Vendor::NgxStorage, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = "45 23 * * 6".into();
        s.retention.max_count = Some(30);
        s.deletion_policy = None;
    });
    let db = env.lun("db", &[]).await;
    let logs = env.lun("logs", &[]).await;
    let out = env.run().await;
    assert_eq!(out.outcome.progress, Progress::Converged, "{out:?}");
    let st = env.status();
    assert_eq!(st.mode.as_deref(), Some("Native"));
    assert!(
        st.mode_reason
            .as_deref()
            .unwrap_or_default()
            .contains("cron_time")
    );
    assert_eq!(count_events(&out, schedule_event::NATIVE_SCHEDULE_SET), 2);
    assert_eq!(
        env.sim.native_schedule(&db),
        Some(("45 23 * * 6".into(), 30))
    );
    assert_eq!(out.wake_at, None, "the array runs it");
    // Converged: a second pass sends nothing.
    let again = env.run().await;
    assert!(again.outcome.events.is_empty(), "{again:?}");
    // A spec change: deleted and created (the API has no update).
    env.apply(|s| s.retention.max_count = Some(7));
    let out = env.run().await;
    assert_eq!(count_events(&out, schedule_event::NATIVE_SCHEDULE_SET), 2);
    assert_eq!(
        env.sim.native_schedule(&logs),
        Some(("45 23 * * 6".into(), 7))
    );
    // logs leaves the selection: its native schedule goes.
    env.apply(|s| s.luns = Some(vec!["db".into()]));
    let out = env.run().await;
    assert_eq!(
        count_events(&out, schedule_event::NATIVE_SCHEDULE_REMOVED),
        1
    );
    assert_eq!(env.sim.native_schedule(&logs), None);
    assert!(env.sim.native_schedule(&db).is_some());
    // A time zone the array does not run in: operator-driven, and the
    // native schedule this object programmed is removed.
    env.apply(|s| s.time_zone = "Europe/Istanbul".into());
    let out = env.run().await;
    let st = env.status();
    assert_eq!(st.mode.as_deref(), Some("Operator"));
    assert!(
        st.mode_reason
            .as_deref()
            .unwrap_or_default()
            .contains("timeZone")
    );
    assert_eq!(
        count_events(&out, schedule_event::NATIVE_SCHEDULE_REMOVED),
        1
    );
    assert_eq!(env.sim.native_schedule(&db), None);
    // Back to native, then deleted: the native schedule is removed and the
    // snapshots the array took stay.
    env.apply(|s| s.time_zone = "UTC".into());
    env.run().await;
    assert!(env.sim.native_schedule(&db).is_some());
    let kept = env
        .sim
        .put_snapshot(&db, "taken-by-the-native-schedule", false, false);
    match snapshot_schedule::cleanup(&env.schedule, Some(&env.handle)).await {
        Cleanup::Done { events } => assert_eq!(events.len(), 1, "{events:?}"),
        Cleanup::Held(o) => panic!("held: {o:?}"),
    }
    assert_eq!(env.sim.native_schedule(&db), None);
    assert!(env.sim.snapshots(&db).iter().any(|s| s.id == kept));
}

#[tokio::test]
async fn ngx_native_schedule_it_did_not_program_is_a_conflict_and_retain_keeps_its_own() {
    let mut env = Env::new(Vendor::NgxStorage, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = "@daily".into();
        s.retention.max_count = Some(5);
    });
    let db = env.lun("db", &[]).await;
    let logs = env.lun("logs", &[]).await;
    // Someone set a schedule on db by hand.
    env.handle
        .backend
        .set_native_schedule(
            &db,
            &array_operator::array::backend::snapshot::NativeSchedule {
                cron: "0 3 * * *".into(),
                keep_max: 9,
            },
        )
        .await
        .expect("out-of-band schedule");
    let out = env.run().await;
    assert_eq!(out.outcome.progress, Progress::Stalled);
    let (status, reason, message) = condition(&env.status(), "Synced");
    assert_eq!((status.as_str(), reason.as_str()), ("False", "Conflict"));
    assert!(message.contains("Lun db"), "{message}");
    assert_eq!(env.sim.native_schedule(&db), Some(("0 3 * * *".into(), 9)));
    assert_eq!(
        env.sim.native_schedule(&logs),
        Some(("0 0 * * *".into(), 5))
    );
    // Retain: deletion leaves the schedules it programmed.
    env.apply(|s| s.deletion_policy = Some(DeletionPolicy::Retain));
    match snapshot_schedule::cleanup(&env.schedule, Some(&env.handle)).await {
        Cleanup::Done { events } => assert!(events.is_empty()),
        Cleanup::Held(o) => panic!("held: {o:?}"),
    }
    assert!(env.sim.native_schedule(&logs).is_some());
    assert!(env.sim.native_schedule(&db).is_some());
}

// ---- chaos ----

impl Sim {
    /// The snapshot writes. (Reads are left out: a failed list only ends
    /// the pass early, and the DSM client's read retries wait out a real
    /// backoff, which would make the test slow, not stronger.)
    fn snapshot_ops(&self) -> Vec<String> {
        use array_operator::array::ngxstorage::Endpoint;
        match self {
            Sim::Ngx(s) => vec![
                s.op(Endpoint::SnapshotCreate),
                s.op(Endpoint::SnapshotDelete),
            ],
            Sim::Dsm(_) => vec![
                "SYNO.Core.ISCSI.LUN.take_snapshot".into(),
                "SYNO.Core.ISCSI.LUN.delete_snapshot".into(),
            ],
        }
    }

    fn faults(&self) -> &array_operator::sim::faults::Faults {
        match self {
            Sim::Ngx(s) => s.faults(),
            Sim::Dsm(s) => s.faults(),
        }
    }
}

/// The faults of a chaos run: before and after the array acted.
fn chaos_actions(vendor: Vendor) -> Vec<FaultAction> {
    let mut actions = vec![
        FaultAction::DropBeforeApply,
        FaultAction::DropAfterApply,
        FaultAction::HttpStatus(500),
        FaultAction::HttpStatusAfterApply(502),
    ];
    match vendor {
        // A retried create that finds its own snapshot: "already exists"
        // (522) after the array made it.
        Vendor::NgxStorage => actions.push(FaultAction::ErrorCodeAfterApply(522)),
        Vendor::Synology => actions.push(FaultAction::ExpireSession),
    }
    actions
}

/// Seeded chaos: faults on the snapshot writes (lost answers after the
/// array acted included), lost status writes (a crash or a leader change
/// after the reconcile), irregular clock steps. Invariants after every
/// step: no snapshot the schedule did not take is ever deleted, no LUN
/// holds two of its snapshots for one due time, every one it took is for a
/// due time; at the end, with the faults gone, retention holds exactly.
async fn chaos(vendor: Vendor) {
    // SNAPSCHED_CHAOS_SEED reruns one seed; SNAPSCHED_CHAOS_SEEDS sets how
    // many random seeds run (default 4 per vendor).
    if let Some(seed) = std::env::var("SNAPSCHED_CHAOS_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
    {
        return chaos_seed(vendor, seed).await;
    }
    let seeds: u64 = std::env::var("SNAPSCHED_CHAOS_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4);
    for _ in 0..seeds {
        chaos_seed(vendor, rand::random()).await;
    }
}

async fn chaos_seed(vendor: Vendor, seed: u64) {
    use rand::{Rng, SeedableRng};
    println!(
        "snapshot schedule chaos ({vendor:?}): seed {seed} (rerun with SNAPSCHED_CHAOS_SEED={seed})"
    );
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut env = Env::new(vendor, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = operator_cron(vendor).into();
        s.retention.max_count = Some(2);
        s.luns = Some(vec!["db".into(), "logs".into(), "web".into()]);
    });
    let ids = vec![
        env.lun("db", &[]).await,
        env.lun("logs", &[]).await,
        env.lun("web", &[]).await,
    ];
    let cron =
        array_operator::reconcile::schedule::parse(operator_cron(vendor), "UTC").expect("schedule");
    // Snapshots the schedule did not take: by hand, and a copied schedule's.
    let copied = Mark {
        namespace: NS.into(),
        name: "nightly".into(),
        uid: "0b6e4b8e-7d2a-4f39-9a55-3c1f1d2b9e01".into(),
        at: utc(2026, 11, 30, 9, 0),
    };
    let mut foreign = Vec::new();
    for id in &ids {
        foreign.push(env.sim.put_snapshot(
            id,
            match vendor {
                Vendor::NgxStorage => "by-hand",
                Vendor::Synology => "by hand",
            },
            false,
            false,
        ));
        let label = match vendor {
            Vendor::NgxStorage => copied.snapshot_name(),
            Vendor::Synology => copied.describe(None),
        };
        foreign.push(env.sim.put_snapshot(id, &label, false, false));
    }
    env.sim
        .faults()
        .arm_random(array_operator::sim::faults::RandomFaults {
            seed,
            per_mille: 250,
            operations: env.sim.snapshot_ops(),
            actions: chaos_actions(vendor),
        });
    for step in 0..150 {
        let before: Vec<Snap> = ids.iter().flat_map(|id| env.sim.snapshots(id)).collect();
        env.clock
            .advance(Duration::from_secs(60 * rng.random_range(5..=50)));
        if rng.random_bool(0.2) {
            env.run_without_status_write().await;
        } else {
            env.run().await;
        }
        let after: Vec<Snap> = ids.iter().flat_map(|id| env.sim.snapshots(id)).collect();
        for gone in before
            .iter()
            .filter(|b| !after.iter().any(|a| a.id == b.id))
        {
            let mark = match vendor {
                Vendor::NgxStorage => Mark::from_snapshot_name(&gone.label),
                Vendor::Synology => Mark::from_description(&gone.label),
            };
            assert!(
                mark.is_some_and(|m| m.uid == UID),
                "seed {seed}, step {step}: pruned {gone:?}, which the schedule did not take"
            );
        }
        for id in &ids {
            let marks = env.sim.marks(id, UID);
            let unique: std::collections::BTreeSet<_> = marks.iter().collect();
            assert_eq!(
                unique.len(),
                marks.len(),
                "seed {seed}, step {step}: a duplicate on {id}: {marks:?}"
            );
            for at in &marks {
                assert_eq!(
                    cron.latest_at_or_before(*at),
                    Some(*at),
                    "seed {seed}, step {step}: {at} is not a due time"
                );
            }
        }
    }
    for f in &foreign {
        assert!(
            ids.iter()
                .any(|id| env.sim.snapshots(id).iter().any(|s| &s.id == f)),
            "seed {seed}: foreign snapshot {f} is gone"
        );
    }
    let fired = env.sim.faults().fired().len();
    assert!(
        fired > 0,
        "seed {seed}: no fault fired, so nothing was tested"
    );
    println!("seed {seed}: {fired} faults fired");
    // Faults gone: at the next due time every LUN converges to exactly
    // maxCount of its own, the newest for that due time.
    env.sim.faults().clear();
    let next = cron.next_after(env.clock.now()).expect("next due time");
    env.clock.set(next);
    let out = env.run().await;
    assert_eq!(
        out.outcome.progress,
        Progress::Converged,
        "seed {seed}: {out:?}"
    );
    for id in &ids {
        let marks = env.sim.marks(id, UID);
        assert_eq!(marks.len(), 2, "seed {seed}: {id}: {marks:?}");
        assert_eq!(marks.last(), Some(&next), "seed {seed}");
    }
}

mod chaos_runs {
    #[tokio::test]
    async fn ngx() {
        super::chaos(super::Vendor::NgxStorage).await
    }

    #[tokio::test]
    async fn synology() {
        super::chaos(super::Vendor::Synology).await
    }
}

/// The SDK dialect reads a schedule back as `interval` and a string
/// `retention`: the diff still sees it as the one it programmed.
#[tokio::test]
async fn ngx_native_schedule_reads_back_equal_on_the_sdk_dialect() {
    let sim = Sim::Ngx(
        NgxSim::start(SimConfig {
            token: NGX_TOKEN.into(),
            dialect: array_operator::array::ngxstorage::Dialect::Sdk,
            ..SimConfig::default()
        })
        .await
        .expect("NGX simulator (SDK dialect)"),
    );
    let mut env = Env::with(sim, utc(2026, 11, 30, 9, 30)).await;
    env.apply(|s| {
        s.schedule = "0,30 8-18 * * 1-5".into();
        s.retention.max_count = Some(12);
    });
    let db = env.lun("db", &[]).await;
    env.lun("logs", &[]).await;
    let first = env.run().await;
    assert_eq!(count_events(&first, schedule_event::NATIVE_SCHEDULE_SET), 2);
    assert_eq!(
        env.sim.native_schedule(&db),
        Some(("0,30 8-18 * * 1-5".into(), 12))
    );
    let second = env.run().await;
    assert!(second.outcome.events.is_empty(), "{second:?}");
    assert_eq!(condition(&env.status(), "Ready").0, "True");
}
