//! The pure core of a VirtualMachine: the guest the spec asks for, the guest
//! as observed (vendor-neutral), the diff between them (settings, power per
//! runStrategy and stopMode, create-time fields only reported), the printable
//! status, and the model of what each call does. No I/O.

use std::time::Duration;

use crate::crd::shared::size_bytes;
use crate::crd::virtual_machine::{
    Autorun, PrintableStatus, RunStrategy, StopMode, VirtualMachineSpec,
};

use super::Drift;
use super::invalid::InvalidSpec;

/// One MiB: VMM takes memory and disk sizes in whole MiB ("MB" in its guide).
pub const MIB: u64 = 1024 * 1024;

/// How long a Shutdown may take when `spec.stopTimeout` is unset.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(300);

/// A disk of a new guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DesiredDisk {
    /// A blank disk of this many MiB.
    Blank {
        /// Size in MiB.
        size_mib: u64,
    },
    /// A copy of the named VMM disk image.
    Image {
        /// Image name.
        name: String,
    },
}

/// A NIC of a new guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredNic {
    /// VMM network name.
    pub network: String,
    /// MAC address; VMM generates one when unset.
    pub mac: Option<String>,
}

/// The guest the spec asks for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DesiredGuest {
    /// Guest name in VMM.
    pub name: String,
    /// VMM storage name.
    pub storage: String,
    /// Host to power on on; VMM chooses when unset.
    pub host: Option<String>,
    /// vCPUs.
    pub cpus: u32,
    /// Memory in MiB.
    pub memory_mib: u64,
    /// Autorun.
    pub autorun: Autorun,
    /// Description (empty when unset).
    pub description: String,
    /// Disks (create-time).
    pub disks: Vec<DesiredDisk>,
    /// NICs (create-time).
    pub nics: Vec<DesiredNic>,
    /// Desired power.
    pub run_strategy: RunStrategy,
    /// How the guest is stopped.
    pub stop_mode: StopMode,
    /// How long a Shutdown may take before the guest is powered off.
    pub stop_timeout: Duration,
}

/// A guest's power, from VMM's status word.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Power {
    /// `running`.
    Running,
    /// `shutdown`.
    Stopped,
    /// `booting`.
    Starting,
    /// `shutting_down`.
    Stopping,
    /// `creating`, `importing`, `preparing`, `moving`, `stor_migrating`:
    /// VMM is working on the guest; no power call until it is done.
    Busy(String),
    /// `inaccessible`, `crashed`, `unknown`, `undefined`, `ha_standby` or a
    /// word the guide does not list.
    Error(String),
}

impl Power {
    /// Reads VMM's status word.
    pub fn from_status(word: &str) -> Power {
        match word {
            "running" => Power::Running,
            "shutdown" => Power::Stopped,
            "booting" => Power::Starting,
            "shutting_down" => Power::Stopping,
            "creating" | "importing" | "preparing" | "moving" | "stor_migrating" => {
                Power::Busy(word.to_string())
            }
            other => Power::Error(other.to_string()),
        }
    }
}

/// A disk as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestDisk {
    /// Disk id.
    pub id: String,
    /// Size in MiB.
    pub size_mib: Option<u64>,
    /// Controller type number.
    pub controller: Option<i64>,
}

/// A NIC as observed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestNic {
    /// NIC id.
    pub id: String,
    /// MAC address.
    pub mac: String,
    /// Network name.
    pub network: String,
}

/// A guest as observed on the array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedGuest {
    /// Guest id.
    pub id: String,
    /// Guest name.
    pub name: String,
    /// VMM's status word, as listed.
    pub status: String,
    /// Host the guest runs on (running guests only).
    pub host: Option<String>,
    /// vCPUs.
    pub cpus: Option<u32>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Autorun.
    pub autorun: Option<Autorun>,
    /// Description.
    pub description: String,
    /// Storage name.
    pub storage: String,
    /// Disks.
    pub disks: Vec<GuestDisk>,
    /// NICs.
    pub nics: Vec<GuestNic>,
}

impl ObservedGuest {
    /// The guest's power.
    pub fn power(&self) -> Power {
        Power::from_status(&self.status)
    }
}

/// The settings `Guest.set` changes; only the fields given are sent.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GuestSettings {
    /// New name.
    pub name: Option<String>,
    /// vCPUs.
    pub cpus: Option<u32>,
    /// Memory in MiB.
    pub memory_mib: Option<u64>,
    /// Autorun.
    pub autorun: Option<Autorun>,
    /// Description.
    pub description: Option<String>,
}

impl GuestSettings {
    /// True when nothing would be sent.
    pub fn is_empty(&self) -> bool {
        *self == GuestSettings::default()
    }

    /// True when it changes CPUs or memory (VMM refuses that while the
    /// guest runs).
    pub fn changes_hardware(&self) -> bool {
        self.cpus.is_some() || self.memory_mib.is_some()
    }
}

/// One call's worth of change to a guest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GuestOp {
    /// `Guest.create` (then its task is polled).
    Create(DesiredGuest),
    /// `Guest.set`.
    Set(GuestSettings),
    /// `Guest.Action poweron`, on the named host when given.
    PowerOn {
        /// Host name.
        host: Option<String>,
    },
    /// `Guest.Action shutdown` (ACPI).
    Shutdown,
    /// `Guest.Action poweroff`.
    PowerOff,
    /// `Guest.delete`.
    Delete,
}

impl GuestOp {
    /// The action word for Events and conditions.
    pub fn action(&self) -> &'static str {
        match self {
            GuestOp::Create(_) => "Create",
            GuestOp::Set(_) => "Set",
            GuestOp::PowerOn { .. } => "PowerOn",
            GuestOp::Shutdown => "Shutdown",
            GuestOp::PowerOff => "PowerOff",
            GuestOp::Delete => "Delete",
        }
    }

    /// What the call does, for a person.
    pub fn describe(&self) -> String {
        match self {
            GuestOp::Create(d) => format!(
                "created guest {:?} ({} vCPUs, {} MiB, storage {:?})",
                d.name, d.cpus, d.memory_mib, d.storage
            ),
            GuestOp::Set(s) => {
                let mut parts = Vec::new();
                if let Some(n) = &s.name {
                    parts.push(format!("name {n:?}"));
                }
                if let Some(c) = s.cpus {
                    parts.push(format!("cpus {c}"));
                }
                if let Some(m) = s.memory_mib {
                    parts.push(format!("memory {m} MiB"));
                }
                if let Some(a) = s.autorun {
                    parts.push(format!("autorun {}", autorun_word(a)));
                }
                if let Some(d) = &s.description {
                    parts.push(format!("description {d:?}"));
                }
                format!("set guest {}", parts.join(", "))
            }
            GuestOp::PowerOn { host: Some(h) } => format!("powered the guest on on host {h:?}"),
            GuestOp::PowerOn { host: None } => "powered the guest on".to_string(),
            GuestOp::Shutdown => "asked the guest's OS to shut down".to_string(),
            GuestOp::PowerOff => "powered the guest off".to_string(),
            GuestOp::Delete => "deleted the guest".to_string(),
        }
    }
}

/// The spec spelling of an autorun value.
pub fn autorun_word(a: Autorun) -> &'static str {
    match a {
        Autorun::Never => "Never",
        Autorun::LastState => "LastState",
        Autorun::Always => "Always",
    }
}

/// A Quantity in whole MiB, or the rule it breaks.
pub fn quantity_mib(field: &str, quantity: &str) -> Result<u64, InvalidSpec> {
    let bytes = size_bytes(quantity)
        .ok_or_else(|| InvalidSpec::new(field, format!("{quantity:?} is not a byte quantity")))?;
    if bytes == 0 || bytes % MIB != 0 {
        return Err(InvalidSpec::new(
            field,
            format!("{quantity:?} must be a positive whole number of MiB (VMM takes sizes in MiB)"),
        ));
    }
    Ok(bytes / MIB)
}

/// The guest `spec` asks for, named `name`, or the first rule it breaks.
pub fn desired(spec: &VirtualMachineSpec, name: String) -> Result<DesiredGuest, InvalidSpec> {
    let memory_mib = quantity_mib("spec.memory", &spec.memory.0)?;
    let cpus = u32::try_from(spec.cpus)
        .ok()
        .filter(|c| (1..=64).contains(c))
        .ok_or_else(|| InvalidSpec::new("spec.cpus", "must be between 1 and 64"))?;
    let mut disks = Vec::with_capacity(spec.disks.len());
    for (i, d) in spec.disks.iter().enumerate() {
        disks.push(match (&d.size, &d.image) {
            (Some(size), None) => DesiredDisk::Blank {
                size_mib: quantity_mib(&format!("spec.disks[{i}].size"), &size.0)?,
            },
            (None, Some(image)) => DesiredDisk::Image {
                name: image.clone(),
            },
            _ => {
                return Err(InvalidSpec::new(
                    format!("spec.disks[{i}]"),
                    "each disk needs exactly one of size or image",
                ));
            }
        });
    }
    if disks.is_empty() {
        return Err(InvalidSpec::new(
            "spec.disks",
            "a guest needs at least one disk",
        ));
    }
    let stop_timeout = match &spec.stop_timeout {
        None => DEFAULT_STOP_TIMEOUT,
        Some(t) => t
            .parse::<kube::core::Duration>()
            .ok()
            .filter(|d| !d.is_negative())
            .map(Duration::from)
            .ok_or_else(|| {
                InvalidSpec::new(
                    "spec.stopTimeout",
                    format!("{t:?} is not a duration such as 90s or 5m"),
                )
            })?,
    };
    Ok(DesiredGuest {
        name,
        storage: spec.storage.clone(),
        host: spec.host.clone(),
        cpus,
        memory_mib,
        autorun: spec.autorun,
        description: spec.description.clone().unwrap_or_default(),
        disks,
        nics: spec
            .nics
            .iter()
            .map(|n| DesiredNic {
                network: n.network.clone(),
                mac: n.mac.as_ref().map(|m| m.to_ascii_lowercase()),
            })
            .collect(),
        run_strategy: spec.run_strategy,
        stop_mode: spec.stop_mode,
        stop_timeout,
    })
}

/// Where a stop stands: when the OS was asked to shut down, and now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StopClock {
    /// Seconds since the Shutdown was sent, when one was.
    pub shutdown_sent_ago: Option<Duration>,
}

/// The diff's result.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GuestPlan {
    /// Calls, in order.
    pub ops: Vec<GuestOp>,
    /// Every difference found.
    pub drift: Vec<Drift>,
    /// What the guest is waiting for (a boot or shutdown in progress), as a
    /// sentence; the pass is then requeued soon.
    pub waiting: Option<String>,
}

/// The rule reported when CPUs or memory differ on a running guest that the
/// spec does not stop.
pub const RULE_RUNNING_HARDWARE: &str = "VMM changes CPUs and memory only while the guest is stopped; it is running and runStrategy does not stop it (stop it, or set runStrategy: Halted)";

/// The calls that stop a running guest per stopMode: Shutdown first (then,
/// once stopTimeout has passed, PowerOff), or PowerOff at once. `None`
/// while a Shutdown is still within its timeout.
pub fn stop_step(desired_mode: StopMode, timeout: Duration, clock: StopClock) -> Option<GuestOp> {
    match (desired_mode, clock.shutdown_sent_ago) {
        (StopMode::PowerOff, _) => Some(GuestOp::PowerOff),
        (StopMode::Shutdown, None) => Some(GuestOp::Shutdown),
        (StopMode::Shutdown, Some(ago)) if ago >= timeout => Some(GuestOp::PowerOff),
        (StopMode::Shutdown, Some(_)) => None,
    }
}

/// The diff: settings first (they are refused on a running guest only for
/// hardware), then power per runStrategy. Create-time fields (storage, disks,
/// NICs) and the host of a running guest are reported, never changed;
/// disks and NICs added in VMM are reported, never removed.
pub fn diff(desired: &DesiredGuest, observed: &ObservedGuest, clock: StopClock) -> GuestPlan {
    let mut ops = Vec::new();
    let mut drift = Vec::new();
    let mut waiting = None;
    let power = observed.power();

    let mut settings = GuestSettings::default();
    if observed.name != desired.name {
        drift.push(Drift::correctable(
            "spec.name",
            &desired.name,
            &observed.name,
        ));
        settings.name = Some(desired.name.clone());
    }
    if observed.autorun != Some(desired.autorun) {
        drift.push(Drift::correctable(
            "spec.autorun",
            autorun_word(desired.autorun),
            observed.autorun.map_or("unknown", autorun_word),
        ));
        settings.autorun = Some(desired.autorun);
    }
    if observed.description != desired.description {
        drift.push(Drift::correctable(
            "spec.description",
            &desired.description,
            &observed.description,
        ));
        settings.description = Some(desired.description.clone());
    }
    let mut hardware = Vec::new();
    if observed.cpus != Some(desired.cpus) {
        hardware.push(("spec.cpus", desired.cpus.to_string(), opt(observed.cpus)));
        settings.cpus = Some(desired.cpus);
    }
    if observed.memory_mib != Some(desired.memory_mib) {
        hardware.push((
            "spec.memory",
            format!("{} MiB", desired.memory_mib),
            observed
                .memory_mib
                .map_or_else(|| "unknown".to_string(), |m| format!("{m} MiB")),
        ));
        settings.memory_mib = Some(desired.memory_mib);
    }
    // A running guest's CPUs and memory change only when the spec stops it.
    let stopped = power == Power::Stopped;
    let halting = desired.run_strategy == RunStrategy::Halted;
    let hardware_now = !hardware.is_empty() && stopped;
    let hardware_after_stop = !hardware.is_empty() && !stopped && halting;
    for (field, want, have) in &hardware {
        if hardware_now || hardware_after_stop {
            drift.push(Drift::correctable(*field, want, have));
        } else {
            drift.push(Drift::fixed(*field, want, have, RULE_RUNNING_HARDWARE));
        }
    }
    let mut later = None;
    if !hardware_now {
        if hardware_after_stop {
            later = Some(GuestSettings {
                cpus: settings.cpus,
                memory_mib: settings.memory_mib,
                ..GuestSettings::default()
            });
        }
        settings.cpus = None;
        settings.memory_mib = None;
    }
    if !settings.is_empty() {
        ops.push(GuestOp::Set(settings));
    }

    match (desired.run_strategy, &power) {
        (RunStrategy::Manual, _) => {}
        (_, Power::Busy(word)) => {
            waiting = Some(format!("VMM is working on the guest (status {word})"));
        }
        (_, Power::Error(word)) => drift.push(Drift::fixed(
            "status.atArray.powerState",
            "a state VMM can power",
            word,
            "VMM reports the guest in an error state; check it in Virtual Machine Manager",
        )),
        (RunStrategy::Always, Power::Stopped) => {
            drift.push(Drift::correctable("spec.runStrategy", "Always", "shutdown"));
            ops.push(GuestOp::PowerOn {
                host: desired.host.clone(),
            });
        }
        (RunStrategy::Always, Power::Starting) => {
            waiting = Some("the guest is booting".to_string());
        }
        (RunStrategy::Always, Power::Stopping) => {
            waiting = Some("the guest is shutting down; it is powered on once stopped".to_string());
        }
        (RunStrategy::Always, Power::Running) => {
            if let (Some(want), Some(have)) = (&desired.host, &observed.host)
                && want != have
            {
                drift.push(Drift::fixed(
                    "spec.host",
                    want,
                    have,
                    "the host is chosen at power-on; the operator does not migrate a running guest",
                ));
            }
        }
        (RunStrategy::Halted, Power::Stopped) => {
            if let Some(set) = later.take() {
                ops.push(GuestOp::Set(set));
            }
        }
        (RunStrategy::Halted, Power::Running | Power::Starting | Power::Stopping) => {
            drift.push(Drift::correctable(
                "spec.runStrategy",
                "Halted",
                &observed.status,
            ));
            match stop_step(desired.stop_mode, desired.stop_timeout, clock) {
                Some(op) if power != Power::Stopping || op == GuestOp::PowerOff => ops.push(op),
                _ => waiting = Some("the guest is shutting down".to_string()),
            }
        }
    }
    // The CPU/memory change waits for the stop above to finish.
    if later.is_some() && waiting.is_none() {
        waiting = Some("CPUs and memory are set once the guest has stopped".to_string());
    }

    if observed.storage != desired.storage {
        drift.push(Drift::fixed(
            "spec.storage",
            &desired.storage,
            &observed.storage,
            "a guest is not moved between storages",
        ));
    }
    if observed.disks.len() > desired.disks.len() {
        drift.push(Drift::fixed(
            "spec.disks",
            format!("{} disks", desired.disks.len()),
            format!("{} disks", observed.disks.len()),
            "disks added in Virtual Machine Manager are reported, never removed",
        ));
    }
    if observed.nics.len() > desired.nics.len() {
        drift.push(Drift::fixed(
            "spec.nics",
            format!("{} NICs", desired.nics.len()),
            format!("{} NICs", observed.nics.len()),
            "NICs added in Virtual Machine Manager are reported, never removed",
        ));
    }
    GuestPlan {
        ops,
        drift,
        waiting,
    }
}

fn opt(v: Option<u32>) -> String {
    v.map_or_else(|| "unknown".to_string(), |c| c.to_string())
}

/// The calls that remove a guest: stop it per stopMode when it runs (the
/// delete waits until it has stopped), then delete.
pub fn delete_ops(
    observed: &ObservedGuest,
    mode: StopMode,
    timeout: Duration,
    clock: StopClock,
) -> Vec<GuestOp> {
    match observed.power() {
        Power::Stopped | Power::Error(_) => vec![GuestOp::Delete],
        Power::Running | Power::Starting | Power::Stopping => {
            stop_step(mode, timeout, clock).into_iter().collect()
        }
        Power::Busy(_) => Vec::new(),
    }
}

/// The guest after `op`, as the diff assumes the call behaves (power calls
/// move it to the transition state VMM reports while it acts).
pub fn apply_model(observed: ObservedGuest, op: &GuestOp) -> Option<ObservedGuest> {
    let mut g = observed;
    match op {
        GuestOp::Create(_) => return Some(g),
        GuestOp::Delete => return None,
        GuestOp::Set(s) => {
            if let Some(n) = &s.name {
                g.name = n.clone();
            }
            if let Some(c) = s.cpus {
                g.cpus = Some(c);
            }
            if let Some(m) = s.memory_mib {
                g.memory_mib = Some(m);
            }
            if let Some(a) = s.autorun {
                g.autorun = Some(a);
            }
            if let Some(d) = &s.description {
                g.description = d.clone();
            }
        }
        GuestOp::PowerOn { host } => {
            g.status = "booting".to_string();
            if host.is_some() {
                g.host = host.clone();
            }
        }
        GuestOp::Shutdown => g.status = "shutting_down".to_string(),
        GuestOp::PowerOff => {
            g.status = "shutdown".to_string();
            g.host = None;
        }
    }
    Some(g)
}

/// The one-word summary for `kubectl get`: Provisioning while a create task
/// runs, else from the power state.
pub fn printable_status(
    observed: Option<&ObservedGuest>,
    creating: bool,
) -> Option<PrintableStatus> {
    if creating {
        return Some(PrintableStatus::Provisioning);
    }
    Some(match observed?.power() {
        Power::Running => PrintableStatus::Running,
        Power::Stopped => PrintableStatus::Stopped,
        Power::Starting => PrintableStatus::Starting,
        Power::Stopping => PrintableStatus::Stopping,
        Power::Busy(_) => PrintableStatus::Provisioning,
        Power::Error(_) => PrintableStatus::Error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::shared::ArrayRef;
    use crate::crd::virtual_machine::{VmDisk, VmNic};
    use k8s_openapi::apimachinery::pkg::api::resource::Quantity;

    fn spec() -> VirtualMachineSpec {
        VirtualMachineSpec {
            array_ref: ArrayRef {
                name: "syno".into(),
            },
            name: None,
            storage: "vmstore".into(),
            host: None,
            cpus: 2,
            memory: Quantity("4Gi".into()),
            autorun: Autorun::Never,
            description: Some("web".into()),
            disks: vec![
                VmDisk {
                    size: Some(Quantity("32Gi".into())),
                    image: None,
                },
                VmDisk {
                    size: None,
                    image: Some("debian-12".into()),
                },
            ],
            nics: vec![VmNic {
                network: "Default VM Network".into(),
                mac: Some("02:11:32:AA:BB:CC".into()),
            }],
            run_strategy: RunStrategy::Always,
            stop_mode: StopMode::Shutdown,
            stop_timeout: Some("90s".into()),
            management_policy: Default::default(),
            deletion_policy: None,
        }
    }

    fn want() -> DesiredGuest {
        desired(&spec(), "web".into()).expect("valid spec")
    }

    fn matching(status: &str) -> ObservedGuest {
        ObservedGuest {
            id: "g1".into(),
            name: "web".into(),
            status: status.into(),
            host: (status == "running").then(|| "nas1".to_string()),
            cpus: Some(2),
            memory_mib: Some(4096),
            autorun: Some(Autorun::Never),
            description: "web".into(),
            storage: "vmstore".into(),
            disks: vec![
                GuestDisk {
                    id: "d1".into(),
                    size_mib: Some(32768),
                    controller: Some(1),
                },
                GuestDisk {
                    id: "d2".into(),
                    size_mib: Some(10240),
                    controller: Some(1),
                },
            ],
            nics: vec![GuestNic {
                id: "n1".into(),
                mac: "02:11:32:aa:bb:cc".into(),
                network: "Default VM Network".into(),
            }],
        }
    }

    const NO_STOP: StopClock = StopClock {
        shutdown_sent_ago: None,
    };

    #[test]
    fn desired_converts_quantities_to_mib_and_lowercases_macs() {
        let d = want();
        assert_eq!(d.memory_mib, 4096);
        assert_eq!(
            d.disks,
            vec![
                DesiredDisk::Blank { size_mib: 32768 },
                DesiredDisk::Image {
                    name: "debian-12".into()
                }
            ]
        );
        assert_eq!(d.nics[0].mac.as_deref(), Some("02:11:32:aa:bb:cc"));
        assert_eq!(d.stop_timeout, Duration::from_secs(90));
    }

    #[test]
    fn desired_names_the_field_it_refuses() {
        let mut s = spec();
        s.memory = Quantity("1000M".into());
        let e = desired(&s, "web".into()).expect_err("not whole MiB");
        assert_eq!(e.field, "spec.memory");
        let mut s = spec();
        s.disks[0].size = Some(Quantity("lots".into()));
        let e = desired(&s, "web".into()).expect_err("not a quantity");
        assert_eq!(e.field, "spec.disks[0].size");
        let mut s = spec();
        s.disks[1].size = Some(Quantity("1Gi".into()));
        let e = desired(&s, "web".into()).expect_err("size and image");
        assert_eq!(e.field, "spec.disks[1]");
        let mut s = spec();
        s.stop_timeout = Some("soon".into());
        let e = desired(&s, "web".into()).expect_err("bad duration");
        assert_eq!(e.field, "spec.stopTimeout");
    }

    #[test]
    fn a_matching_running_guest_needs_nothing() {
        let plan = diff(&want(), &matching("running"), NO_STOP);
        assert_eq!(plan.ops, vec![]);
        assert_eq!(plan.drift, vec![]);
        assert_eq!(plan.waiting, None);
    }

    #[test]
    fn settings_are_one_set_call() {
        let mut g = matching("running");
        g.name = "old".into();
        g.autorun = Some(Autorun::Always);
        g.description = "x".into();
        let plan = diff(&want(), &g, NO_STOP);
        assert_eq!(
            plan.ops,
            vec![GuestOp::Set(GuestSettings {
                name: Some("web".into()),
                autorun: Some(Autorun::Never),
                description: Some("web".into()),
                ..GuestSettings::default()
            })]
        );
        assert!(plan.drift.iter().all(|d| d.correctable));
        assert_eq!(plan.drift.len(), 3);
    }

    #[test]
    fn hardware_on_a_stopped_guest_is_set() {
        let mut d = want();
        d.run_strategy = RunStrategy::Manual;
        let mut g = matching("shutdown");
        g.cpus = Some(1);
        g.memory_mib = Some(2048);
        let plan = diff(&d, &g, NO_STOP);
        assert_eq!(
            plan.ops,
            vec![GuestOp::Set(GuestSettings {
                cpus: Some(2),
                memory_mib: Some(4096),
                ..GuestSettings::default()
            })]
        );
    }

    #[test]
    fn hardware_on_a_running_guest_is_reported_never_powered_off() {
        for strategy in [RunStrategy::Always, RunStrategy::Manual] {
            let mut d = want();
            d.run_strategy = strategy;
            let mut g = matching("running");
            g.cpus = Some(4);
            let plan = diff(&d, &g, NO_STOP);
            assert_eq!(plan.ops, vec![], "{strategy:?}");
            assert_eq!(plan.drift.len(), 1);
            assert!(!plan.drift[0].correctable);
            assert_eq!(plan.drift[0].field, "spec.cpus");
            assert_eq!(plan.drift[0].rule, Some(RULE_RUNNING_HARDWARE));
        }
    }

    #[test]
    fn hardware_under_halted_waits_for_the_stop_then_is_set() {
        let mut d = want();
        d.run_strategy = RunStrategy::Halted;
        let mut g = matching("running");
        g.memory_mib = Some(2048);
        let plan = diff(&d, &g, NO_STOP);
        assert_eq!(plan.ops, vec![GuestOp::Shutdown]);
        assert!(plan.waiting.is_some());
        let g = apply_model(g, &GuestOp::PowerOff).expect("still there");
        let plan = diff(&d, &g, NO_STOP);
        assert_eq!(
            plan.ops,
            vec![GuestOp::Set(GuestSettings {
                memory_mib: Some(4096),
                ..GuestSettings::default()
            })]
        );
        assert_eq!(plan.waiting, None);
    }

    #[test]
    fn run_strategy_transitions() {
        let d = want();
        assert_eq!(
            diff(&d, &matching("shutdown"), NO_STOP).ops,
            vec![GuestOp::PowerOn { host: None }]
        );
        let mut on_host = want();
        on_host.host = Some("nas2".into());
        assert_eq!(
            diff(&on_host, &matching("shutdown"), NO_STOP).ops,
            vec![GuestOp::PowerOn {
                host: Some("nas2".into())
            }]
        );
        let booting = diff(&d, &matching("booting"), NO_STOP);
        assert_eq!(booting.ops, vec![]);
        assert!(booting.waiting.is_some());

        let mut manual = want();
        manual.run_strategy = RunStrategy::Manual;
        for status in ["running", "shutdown", "booting", "shutting_down"] {
            assert_eq!(diff(&manual, &matching(status), NO_STOP).ops, vec![]);
        }

        let mut halted = want();
        halted.run_strategy = RunStrategy::Halted;
        assert_eq!(diff(&halted, &matching("shutdown"), NO_STOP).ops, vec![]);
        assert_eq!(
            diff(&halted, &matching("running"), NO_STOP).ops,
            vec![GuestOp::Shutdown]
        );
        halted.stop_mode = StopMode::PowerOff;
        assert_eq!(
            diff(&halted, &matching("running"), NO_STOP).ops,
            vec![GuestOp::PowerOff]
        );
    }

    #[test]
    fn shutdown_turns_into_poweroff_after_the_timeout() {
        let mut d = want();
        d.run_strategy = RunStrategy::Halted;
        let sent = |secs| StopClock {
            shutdown_sent_ago: Some(Duration::from_secs(secs)),
        };
        let within = diff(&d, &matching("shutting_down"), sent(30));
        assert_eq!(within.ops, vec![]);
        assert!(within.waiting.is_some());
        assert_eq!(
            diff(&d, &matching("shutting_down"), sent(90)).ops,
            vec![GuestOp::PowerOff]
        );
        // A guest that ignores ACPI stays "running": powered off too.
        assert_eq!(
            diff(&d, &matching("running"), sent(91)).ops,
            vec![GuestOp::PowerOff]
        );
    }

    #[test]
    fn busy_and_error_states_get_no_power_call() {
        let d = want();
        let busy = diff(&d, &matching("creating"), NO_STOP);
        assert_eq!(busy.ops, vec![]);
        assert!(busy.waiting.is_some());
        let crashed = diff(&d, &matching("crashed"), NO_STOP);
        assert_eq!(crashed.ops, vec![]);
        assert!(crashed.drift.iter().any(|x| !x.correctable));
    }

    #[test]
    fn out_of_band_disks_and_nics_are_reported_not_removed() {
        let mut g = matching("running");
        g.disks.push(GuestDisk {
            id: "d3".into(),
            size_mib: Some(1),
            controller: None,
        });
        g.nics.push(GuestNic {
            id: "n2".into(),
            mac: "02:00:00:00:00:01".into(),
            network: "lab".into(),
        });
        g.storage = "other".into();
        let plan = diff(&want(), &g, NO_STOP);
        assert_eq!(plan.ops, vec![]);
        let fields: Vec<_> = plan.drift.iter().map(|d| d.field.as_str()).collect();
        assert_eq!(fields, vec!["spec.storage", "spec.disks", "spec.nics"]);
        assert!(plan.drift.iter().all(|d| !d.correctable));
    }

    #[test]
    fn deletion_stops_first() {
        let g = matching("running");
        let t = Duration::from_secs(60);
        assert_eq!(
            delete_ops(&g, StopMode::Shutdown, t, NO_STOP),
            vec![GuestOp::Shutdown]
        );
        assert_eq!(
            delete_ops(&g, StopMode::PowerOff, t, NO_STOP),
            vec![GuestOp::PowerOff]
        );
        assert_eq!(
            delete_ops(&matching("shutdown"), StopMode::Shutdown, t, NO_STOP),
            vec![GuestOp::Delete]
        );
    }

    #[test]
    fn printable_status_follows_power_and_the_task() {
        assert_eq!(
            printable_status(None, true),
            Some(PrintableStatus::Provisioning)
        );
        assert_eq!(printable_status(None, false), None);
        for (word, want) in [
            ("running", PrintableStatus::Running),
            ("shutdown", PrintableStatus::Stopped),
            ("booting", PrintableStatus::Starting),
            ("shutting_down", PrintableStatus::Stopping),
            ("inaccessible", PrintableStatus::Error),
        ] {
            assert_eq!(printable_status(Some(&matching(word)), false), Some(want));
        }
    }

    #[test]
    fn the_model_follows_each_call() {
        let g = matching("shutdown");
        let on = apply_model(
            g.clone(),
            &GuestOp::PowerOn {
                host: Some("nas2".into()),
            },
        )
        .expect("kept");
        assert_eq!(
            (on.status.as_str(), on.host.as_deref()),
            ("booting", Some("nas2"))
        );
        assert_eq!(apply_model(g, &GuestOp::Delete), None);
    }
}
