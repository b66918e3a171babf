//! VirtualMachine against the DSM simulator over HTTPS on loopback, through
//! the vendor-neutral Backend and the pure core: names checked before any
//! write, the asynchronous create polled to its end, settings, run-strategy
//! transitions, a hardware change refused while the guest runs, deletion of
//! a running guest, faults on each VMM call, and NGXStorage answering
//! Unsupported without a single call.

mod dsm_support;
#[path = "ngx_support/mod.rs"]
mod ngx_support;

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::error::ErrorClass;
use array_operator::array::ngxstorage::Dialect;
use array_operator::crd::shared::ArrayRef;
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::virtual_machine::{
    Autorun, PrintableStatus, RunStrategy, StopMode, VirtualMachineSpec, VmDisk, VmNic,
};
use array_operator::model::SecretString;
use array_operator::reconcile::virtual_machine::{
    self as vm, DesiredGuest, GuestOp, GuestSettings, ObservedGuest, RULE_RUNNING_HARDWARE,
    StopClock,
};
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim};
use array_operator::sim::faults::{FaultAction, FaultRule};
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

const GUEST_CREATE: &str = "SYNO.Virtualization.API.Guest.create";
const GUEST_LIST: &str = "SYNO.Virtualization.API.Guest.list";
const NO_STOP: StopClock = StopClock {
    shutdown_sent_ago: None,
};

async fn dsm(sim: &DsmSim) -> Backend {
    Backend::connect(BackendConfig {
        vendor: Vendor::Synology,
        endpoint: sim.base_url(),
        secondary_endpoint: None,
        credentials: Credentials::UserPassword {
            username: DEFAULT_USERNAME.into(),
            password: SecretString::new(DEFAULT_PASSWORD),
        },
        transport: dsm_support::transport(sim.ca_pem(), false),
        ngx_owner: None,
        resize_mode: ResizeMode::Absolute,
        session_name: "vm-test".into(),
    })
    .await
    .expect("connect")
}

/// The seeded simulator's names: storage, network and disk image.
fn spec() -> VirtualMachineSpec {
    VirtualMachineSpec {
        array_ref: ArrayRef {
            name: "syno".into(),
        },
        name: None,
        storage: "default".into(),
        host: None,
        cpus: 2,
        memory: Quantity("2Gi".into()),
        autorun: Autorun::LastState,
        description: Some("web tier".into()),
        disks: vec![
            VmDisk {
                size: Some(Quantity("16Gi".into())),
                image: None,
            },
            VmDisk {
                size: None,
                image: Some("ubuntu-22.04-disk".into()),
            },
        ],
        nics: vec![VmNic {
            network: "default".into(),
            mac: None,
        }],
        run_strategy: RunStrategy::Always,
        stop_mode: StopMode::Shutdown,
        stop_timeout: None,
        management_policy: Default::default(),
        deletion_policy: None,
    }
}

fn desired(name: &str) -> DesiredGuest {
    vm::desired(&spec(), name.into()).expect("valid spec")
}

async fn guest(b: &Backend, id: &str) -> Option<ObservedGuest> {
    b.list_guests()
        .await
        .expect("list")
        .into_iter()
        .find(|g| g.id == id)
}

/// Starts the create and polls its task to the end: the progress only grows
/// and the guest is listed only once the task names it.
async fn create(b: &Backend, d: &DesiredGuest) -> String {
    let task = b.create_guest(d).await.expect("create starts");
    let mut last = -1;
    for _ in 0..100 {
        let t = b.guest_task(&task).await.expect("task");
        assert!(!t.failed, "{t:?}");
        let progress = t.progress.expect("progress");
        assert!(
            progress >= last,
            "progress went back: {last} then {progress}"
        );
        last = progress;
        if let Some(id) = t.guest_id {
            assert!(t.finished);
            assert_eq!(progress, 100);
            return id;
        }
        assert!(
            b.list_guests()
                .await
                .expect("list")
                .iter()
                .all(|g| g.name != d.name),
            "listed before its task finished"
        );
    }
    panic!("the create task never finished");
}

/// Applies a plan's ops and returns the guest after them.
async fn apply(b: &Backend, id: &str, ops: &[GuestOp]) -> ObservedGuest {
    for op in ops {
        b.update_guest(id, op).await.expect("apply");
    }
    guest(b, id).await.expect("guest still there")
}

/// One change to the spec.
type SpecEdit = fn(&mut VirtualMachineSpec);

#[tokio::test]
async fn unknown_names_are_refused_naming_the_field_before_any_write() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let cases: [(SpecEdit, &str); 4] = [
        (|s| s.storage = "nope".into(), "spec.storage"),
        (
            |s| s.nics[0].network = "nope".into(),
            "spec.nics[0].network",
        ),
        (
            |s| s.disks[1].image = Some("nope".into()),
            "spec.disks[1].image",
        ),
        (|s| s.host = Some("nope".into()), "spec.host"),
    ];
    for (change, field) in cases {
        let mut s = spec();
        change(&mut s);
        let d = vm::desired(&s, "named".into()).expect("schema-valid");
        let refusal = b
            .check_guest_names(&d)
            .await
            .expect("lists answer")
            .expect("refused");
        assert_eq!(refusal.field, field);
        assert!(refusal.rule.contains("\"nope\""), "{}", refusal.rule);
    }
    assert_eq!(
        b.check_guest_names(&desired("fine")).await.expect("lists"),
        None
    );
    assert_eq!(sim.calls().count(GUEST_CREATE), 0);
}

#[tokio::test]
async fn create_converges_then_settings_power_and_delete() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let d = desired("web");
    let id = create(&b, &d).await;
    let g = guest(&b, &id).await.expect("listed");
    assert_eq!((g.cpus, g.memory_mib), (Some(2), Some(2048)));
    assert_eq!(g.disks.len(), 2);
    assert_eq!(g.disks[1].size_mib, Some(10240), "cloned image's size");
    assert_eq!(g.nics[0].network, "default");
    assert_eq!(
        vm::printable_status(Some(&g), false),
        Some(PrintableStatus::Stopped)
    );

    // Always: powered on, then nothing left to do.
    let plan = vm::diff(&d, &g, NO_STOP);
    assert_eq!(plan.ops, vec![GuestOp::PowerOn { host: None }]);
    let g = apply(&b, &id, &plan.ops).await;
    assert_eq!(g.status, "running");
    assert_eq!(g.host.as_deref(), Some("nas01"));
    assert_eq!(vm::diff(&d, &g, NO_STOP).ops, vec![]);

    // Settings that VMM changes on a running guest: one Guest.set.
    let mut d2 = d.clone();
    d2.description = "new text".into();
    d2.autorun = Autorun::Always;
    d2.name = "web-2".into();
    let plan = vm::diff(&d2, &g, NO_STOP);
    assert_eq!(plan.ops.len(), 1);
    let g = apply(&b, &id, &plan.ops).await;
    assert_eq!(g.name, "web-2");
    assert_eq!(vm::diff(&d2, &g, NO_STOP).ops, vec![]);

    // Halted with PowerOff: stopped at once, then CPUs and memory are set.
    let mut halted = d2.clone();
    halted.run_strategy = RunStrategy::Halted;
    halted.stop_mode = StopMode::PowerOff;
    halted.cpus = 3;
    let plan = vm::diff(&halted, &g, NO_STOP);
    assert_eq!(plan.ops, vec![GuestOp::PowerOff]);
    let g = apply(&b, &id, &plan.ops).await;
    let plan = vm::diff(&halted, &g, NO_STOP);
    assert_eq!(
        plan.ops,
        vec![GuestOp::Set(GuestSettings {
            cpus: Some(3),
            ..GuestSettings::default()
        })]
    );
    let g = apply(&b, &id, &plan.ops).await;
    assert_eq!((g.status.as_str(), g.cpus), ("shutdown", Some(3)));
    assert_eq!(vm::diff(&halted, &g, NO_STOP).ops, vec![]);

    // Delete of a stopped guest, then again: already gone is success.
    b.update_guest(&id, &GuestOp::Delete).await.expect("delete");
    b.update_guest(&id, &GuestOp::Delete)
        .await
        .expect("already gone");
    assert_eq!(guest(&b, &id).await, None);
}

#[tokio::test]
async fn a_hardware_change_while_running_is_refused_by_vmm_and_never_sent_by_the_diff() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let d = desired("db");
    let id = create(&b, &d).await;
    let g = apply(&b, &id, &[GuestOp::PowerOn { host: None }]).await;
    // VMM's own answer to the change the diff holds back.
    let refused = b
        .update_guest(
            &id,
            &GuestOp::Set(GuestSettings {
                memory_mib: Some(4096),
                ..GuestSettings::default()
            }),
        )
        .await
        .expect_err("refused while running");
    assert_eq!(refused.class, ErrorClass::InUse);
    assert_eq!(refused.vendor_code, Some(904));
    assert!(refused.api_call.contains("SYNO.Virtualization.API.Guest"));
    // Always and Manual never power the guest off to apply it.
    for strategy in [RunStrategy::Always, RunStrategy::Manual] {
        let mut bigger = d.clone();
        bigger.memory_mib = 4096;
        bigger.run_strategy = strategy;
        let plan = vm::diff(&bigger, &g, NO_STOP);
        assert_eq!(plan.ops, vec![], "{strategy:?}");
        assert_eq!(plan.drift[0].rule, Some(RULE_RUNNING_HARDWARE));
    }
    assert_eq!(guest(&b, &id).await.expect("there").status, "running");
}

#[tokio::test]
async fn a_running_guest_is_stopped_before_it_is_deleted() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let id = create(&b, &desired("doomed")).await;
    let g = apply(&b, &id, &[GuestOp::PowerOn { host: None }]).await;
    let online = b
        .update_guest(&id, &GuestOp::Delete)
        .await
        .expect_err("VMM refuses to delete a running guest");
    assert_eq!(online.class, ErrorClass::InUse);
    let t = std::time::Duration::from_secs(60);
    let ops = vm::delete_ops(&g, StopMode::Shutdown, t, NO_STOP);
    assert_eq!(ops, vec![GuestOp::Shutdown]);
    let g = apply(&b, &id, &ops).await;
    // A repeated stop (a retry after a lost answer) is not an error.
    b.update_guest(&id, &GuestOp::PowerOff)
        .await
        .expect("stopping a stopped guest");
    let ops = vm::delete_ops(&g, StopMode::Shutdown, t, NO_STOP);
    assert_eq!(ops, vec![GuestOp::Delete]);
    b.update_guest(&id, &ops[0]).await.expect("delete");
    assert_eq!(guest(&b, &id).await, None);
}

#[tokio::test]
async fn power_on_beyond_the_hosts_free_cpu_is_refused_with_the_vmm_code() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let mut big = desired("big");
    big.cpus = 3;
    let big = create(&b, &big).await;
    let small = create(&b, &desired("small")).await;
    b.update_guest(&big, &GuestOp::PowerOn { host: None })
        .await
        .expect("3 of 4 cores");
    let e = b
        .update_guest(&small, &GuestOp::PowerOn { host: None })
        .await
        .expect_err("2 more cores do not fit");
    assert_eq!(e.vendor_code, Some(902));
    assert_eq!(e.class, ErrorClass::LimitReached);
    assert!(e.message.contains("CPU"), "{}", e.message);
}

#[tokio::test]
async fn a_create_whose_answer_is_lost_is_not_resent() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    sim.faults().arm(FaultRule::once(
        GUEST_CREATE,
        1,
        FaultAction::DropAfterApply,
    ));
    let e = b
        .create_guest(&desired("lost"))
        .await
        .expect_err("answer lost");
    assert_eq!(e.class, ErrorClass::Unreachable);
    assert_eq!(sim.calls().count(GUEST_CREATE), 1, "never resent");
}

#[tokio::test]
async fn each_vmm_call_reports_its_fault_with_the_call_and_code() {
    let sim = dsm_support::sim().await;
    let b = dsm(&sim).await;
    let id = create(&b, &desired("faulty")).await;
    let calls: [(&str, GuestOp); 3] = [
        (
            "SYNO.Virtualization.API.Guest.set",
            GuestOp::Set(GuestSettings {
                description: Some("x".into()),
                ..GuestSettings::default()
            }),
        ),
        (
            "SYNO.Virtualization.API.Guest.Action.poweron",
            GuestOp::PowerOn { host: None },
        ),
        ("SYNO.Virtualization.API.Guest.delete", GuestOp::Delete),
    ];
    for (operation, op) in calls {
        sim.faults()
            .arm(FaultRule::once(operation, 1, FaultAction::ErrorCode(402)));
        let e = b.update_guest(&id, &op).await.expect_err(operation);
        assert_eq!(e.vendor_code, Some(402), "{operation}");
        assert!(
            e.api_call
                .contains(operation.rsplit_once('.').map_or("", |p| p.0)),
            "{}",
            e.api_call
        );
    }
    sim.faults()
        .arm(FaultRule::always(GUEST_LIST, FaultAction::ErrorCode(402)));
    let e = b.list_guests().await.expect_err("list fault");
    assert_eq!(e.vendor_code, Some(402));
    sim.faults().clear();
    sim.faults().arm(FaultRule::once(
        "SYNO.Virtualization.API.Task.Info.get",
        1,
        FaultAction::ErrorCode(1000),
    ));
    let task = b.create_guest(&desired("faulty-2")).await.expect("create");
    let e = b.guest_task(&task).await.expect_err("task fault");
    assert_eq!(e.vendor_code, Some(1000));
}

#[tokio::test]
async fn ngxstorage_answers_unsupported_without_a_call() {
    let sim = ngx_support::sim(Dialect::Document).await;
    let b = Backend::connect(BackendConfig {
        vendor: Vendor::NgxStorage,
        endpoint: sim.base_url(),
        secondary_endpoint: None,
        credentials: Credentials::Token(SecretString::new(ngx_support::TOKEN)),
        transport: ngx_support::config(&sim).transport,
        ngx_owner: Some(sim.owners()[0].clone()),
        resize_mode: ResizeMode::Absolute,
        session_name: "vm-ngx".into(),
    })
    .await
    .expect("connect");
    sim.calls().clear();
    let d = desired("web");
    let errors = [
        b.list_guests().await.map(|_| ()),
        b.check_guest_names(&d).await.map(|_| ()),
        b.create_guest(&d).await.map(|_| ()),
        b.guest_task("t").await.map(|_| ()),
        b.update_guest("g", &GuestOp::Delete).await,
    ];
    for e in errors {
        let e = e.expect_err("unsupported");
        assert_eq!(e.class, ErrorClass::Unsupported);
        assert!(e.message.contains("Synology"), "{}", e.message);
    }
    assert_eq!(sim.calls().calls().len(), 0, "{:?}", sim.calls().calls());
}

#[tokio::test]
async fn power_transitions_take_simulated_time_and_the_diff_waits_for_them() {
    let sim = dsm_support::sim().await;
    sim.state().update(|s| s.power_steps = 2);
    let b = dsm(&sim).await;
    let d = desired("slow");
    let id = create(&b, &d).await;
    b.update_guest(&id, &GuestOp::PowerOn { host: None })
        .await
        .expect("power on");
    // Each look at the guests is one step of simulated time.
    let booting = guest(&b, &id).await.expect("there");
    assert_eq!(booting.status, "booting");
    assert_eq!(
        vm::printable_status(Some(&booting), false),
        Some(PrintableStatus::Starting)
    );
    let plan = vm::diff(&d, &booting, NO_STOP);
    assert_eq!(plan.ops, vec![], "no second power-on while booting");
    assert!(plan.waiting.is_some());
    let running = guest(&b, &id).await.expect("there");
    assert_eq!(running.status, "running");

    // Halted, Shutdown: the OS is asked; while it shuts down nothing more is
    // sent until stopTimeout has passed, then the guest is powered off.
    let mut halted = d.clone();
    halted.run_strategy = RunStrategy::Halted;
    let plan = vm::diff(&halted, &running, NO_STOP);
    assert_eq!(plan.ops, vec![GuestOp::Shutdown]);
    b.update_guest(&id, &GuestOp::Shutdown)
        .await
        .expect("shutdown");
    let stopping = guest(&b, &id).await.expect("there");
    assert_eq!(stopping.status, "shutting_down");
    let online = b
        .update_guest(&id, &GuestOp::Delete)
        .await
        .expect_err("still online while shutting down");
    assert_eq!(online.vendor_code, Some(904));
    let sent = |secs| StopClock {
        shutdown_sent_ago: Some(std::time::Duration::from_secs(secs)),
    };
    assert_eq!(vm::diff(&halted, &stopping, sent(10)).ops, vec![]);
    let late = vm::diff(&halted, &stopping, sent(301)).ops;
    assert_eq!(late, vec![GuestOp::PowerOff]);
    b.update_guest(&id, &late[0]).await.expect("power off");
    let stopped = guest(&b, &id).await.expect("there");
    assert_eq!(
        (stopped.status.as_str(), stopped.host.as_deref()),
        ("shutdown", None)
    );
    assert_eq!(vm::diff(&halted, &stopped, NO_STOP).ops, vec![]);
}

#[tokio::test]
async fn after_a_crash_mid_create_the_running_task_forbids_a_second_create_and_the_guest_is_found_by_name()
 {
    let sim = dsm_support::sim().await;
    // A slow task: four polls to finish.
    sim.state().update(|s| s.task_step = 25);
    let b = dsm(&sim).await;
    let d = desired("crashy");
    // The operator starts the create and "crashes": the task id is lost.
    let _lost = b.create_guest(&d).await.expect("create starts");
    // A fresh process lists: no guest of the name yet, but a create runs.
    let listed = b.list_guests().await.expect("list");
    assert!(listed.iter().all(|g| g.name != "crashy"));
    let running = b.guest_creates_in_flight().await.expect("tasks");
    assert_eq!(running.len(), 1, "the lost create is still in flight");
    // A second create of the same name is refused by VMM while it runs,
    // before acting; the probe above is what keeps the operator from trying.
    let again = b.create_guest(&d).await.expect_err("name taken");
    assert_eq!(again.class, ErrorClass::AlreadyExists);
    // The task ends (polled by anyone); then the guest is found by name, once.
    while b
        .guest_task(&running[0].id)
        .await
        .expect("poll")
        .guest_id
        .is_none()
    {}
    assert_eq!(
        b.guest_creates_in_flight().await.expect("tasks"),
        Vec::new()
    );
    let named: Vec<_> = b
        .list_guests()
        .await
        .expect("list")
        .into_iter()
        .filter(|g| g.name == "crashy")
        .collect();
    assert_eq!(named.len(), 1, "exactly one guest of the name");
    assert_eq!(sim.calls().count(GUEST_CREATE), 2);
    // The finished task's record was cleared by the probe.
    assert!(
        sim.state()
            .read(|s| s.tasks.iter().all(|t| t.task_id != running[0].id))
    );
}
