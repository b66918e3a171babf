//! The engine at scale against each simulator (`cargo bench --bench engine`).
//!
//! Luns and the iSCSI targets that map them are converged from nothing,
//! resynced in steady state, then all deleted (targets first, as the
//! operator's deletion holds order them). Printed per phase: wall time,
//! array calls by operation and per Lun, p50/p99 reconcile time; and where
//! the memory goes: the operator side (this process: engine, views and the
//! in-memory object caches) and the simulator (a child process) separately.
//!
//! `--help` lists the flags. Run by `cargo test` (without `--bench`) it does
//! 20 Luns and 2 targets as a smoke test, and fails when a phase costs more
//! array calls than its budget (see [`Budget`]), so a regression of the call
//! counts fails the test suite, not only the numbers.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::iscsi_target::IscsiTargetSpec;
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{ArrayRef, ManagementPolicy};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{self, ArrayHandle, Cleanup, ObservationCache, Progress};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSimConfig};
use array_operator::sim::faults::{CallLog, RecordedCall};
use array_operator::sim::ngx::{NgxSim, SimConfig};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
use kube::Resource;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

/// Counts live heap bytes, so the report can tell what the operator holds
/// from what the allocator keeps (RSS also counts freed pages not returned
/// to the system).
struct Counting;

static LIVE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
static PEAK: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

fn grew(by: usize) {
    let now = LIVE.fetch_add(by, std::sync::atomic::Ordering::Relaxed) + by;
    PEAK.fetch_max(now, std::sync::atomic::Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; the
// counter only adds and subtracts the sizes it was given.
unsafe impl std::alloc::GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: std::alloc::Layout) -> *mut u8 {
        grew(layout.size());
        // SAFETY: forwarded with the caller's layout.
        unsafe { std::alloc::System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: std::alloc::Layout) {
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer and layout.
        unsafe { std::alloc::System.dealloc(ptr, layout) }
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: std::alloc::Layout, new_size: usize) -> *mut u8 {
        grew(new_size);
        LIVE.fetch_sub(layout.size(), std::sync::atomic::Ordering::Relaxed);
        // SAFETY: forwarded with the caller's pointer, layout and size.
        unsafe { std::alloc::System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// Live heap bytes, in KiB.
fn live_kib() -> u64 {
    (LIVE.load(std::sync::atomic::Ordering::Relaxed) / 1024) as u64
}

/// The most live heap since the last call, in KiB (then restarts from now).
fn peak_kib_since() -> u64 {
    let now = LIVE.load(std::sync::atomic::Ordering::Relaxed);
    (PEAK.swap(now, std::sync::atomic::Ordering::Relaxed) / 1024) as u64
}

const NS: &str = "bench";
const NGX_TOKEN: &str = "bench-token";

const HELP: &str = "\
The engine at scale against simulated arrays: converge, steady resync, delete.

usage: cargo bench --bench engine -- [FLAGS]

  --luns N           Luns to create (default 1000)
  --targets N        iSCSI targets; each maps up to 10 consecutive Luns
                     (default: one per 10 Luns; --targets equal to --luns
                     gives every Lun a target of its own)
  --vendor V         ngx, dsm or both (default both)
  --concurrency N    reconciles in flight (default 16)
  --max-requests N   array requests in flight per array, the StorageArray's
                     spec.maxConcurrentRequests (default 4, its default)
  --latency-ms N     latency the simulator adds to every call (default 0)
  --in-process       run the simulator inside the bench process (the RSS
                     then covers both); by default it is a child process
  --help             this text

Under `cargo test` (no --bench) it runs 20 Luns and 2 targets and fails when
a phase exceeds its array-call budget.";

/// The bench's flags.
#[derive(Clone, Debug)]
struct Args {
    luns: usize,
    targets: usize,
    vendors: Vec<Vendor>,
    concurrency: usize,
    max_requests: usize,
    latency_ms: u64,
    in_process: bool,
    smoke: bool,
}

fn parse_args(argv: &[String]) -> Result<Args, String> {
    // `cargo bench` passes --bench; under `cargo test` the same program runs
    // as a quick smoke test of the whole path.
    let full = argv.iter().any(|a| a == "--bench");
    let mut a = Args {
        luns: if full { 1000 } else { 20 },
        targets: 0,
        vendors: vec![Vendor::NgxStorage, Vendor::Synology],
        concurrency: 16,
        max_requests: 4,
        latency_ms: 0,
        in_process: false,
        smoke: !full,
    };
    let mut targets = None;
    let mut it = argv.iter().skip(1);
    let number = |flag: &str, v: Option<&String>| -> Result<u64, String> {
        v.ok_or_else(|| format!("{flag} needs a value"))?
            .parse::<u64>()
            .map_err(|_| format!("{flag} takes a whole number"))
    };
    while let Some(flag) = it.next() {
        match flag.as_str() {
            "--bench" => {}
            "--in-process" => a.in_process = true,
            "--luns" => a.luns = number(flag, it.next())? as usize,
            "--targets" => targets = Some(number(flag, it.next())? as usize),
            "--concurrency" => a.concurrency = number(flag, it.next())?.max(1) as usize,
            "--max-requests" => a.max_requests = number(flag, it.next())?.max(1) as usize,
            "--latency-ms" => a.latency_ms = number(flag, it.next())?,
            "--vendor" => {
                a.vendors = match it.next().map(String::as_str) {
                    Some("ngx") => vec![Vendor::NgxStorage],
                    Some("dsm") => vec![Vendor::Synology],
                    Some("both") => vec![Vendor::NgxStorage, Vendor::Synology],
                    _ => return Err("--vendor takes ngx, dsm or both".into()),
                }
            }
            other => return Err(format!("unknown flag {other:?} (see --help)")),
        }
    }
    a.targets = targets.unwrap_or(a.luns.div_ceil(10));
    Ok(a)
}

/// How many array calls a phase may cost: one create per Lun; per target a
/// create that binds its LUNs (NGX), or a create plus one batched map (DSM,
/// whose target create cannot map); per array a small constant for login,
/// version and the one list per object type. Steady state writes nothing
/// and lists each type once. Deletion is one call per Lun, and per target
/// one on DSM and three on NGX.
#[derive(Clone, Copy, Debug)]
struct Budget {
    converge: usize,
    steady_writes: usize,
    delete: usize,
}

impl Budget {
    fn of(vendor: Vendor, a: &Args) -> Self {
        // Login/info/version, the first observation (4 lists at most), the
        // list after the first target create on an empty NGX array, and the
        // one host-name look-up of DSM.
        let constant = 12;
        let (create_target, delete_target) = match vendor {
            // NGX: the create binds the LUNs. Its delete reads the auth
            // groups (to remove the target's own) and unmaps first, since
            // nothing says NGX drops mappings with a target.
            Vendor::NgxStorage => (1, 3),
            // DSM: create, then one map; the delete drops the mappings.
            Vendor::Synology => (2, 1),
        };
        Budget {
            converge: a.luns + create_target * a.targets + constant,
            steady_writes: 0,
            delete: a.luns + delete_target * a.targets + constant,
        }
    }
}

/// What a phase cost.
struct Phase {
    name: &'static str,
    wall: Duration,
    calls: Vec<(String, String)>,
    durations: Vec<Duration>,
    converged: bool,
    heap_peak_kib: u64,
    /// CPU seconds the operator (this process) used in the phase.
    cpu_operator: f64,
    /// CPU seconds the simulator child used in the phase.
    cpu_simulator: Option<f64>,
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn is_mutating(vendor: Vendor, (operation, method): &(String, String)) -> bool {
    match vendor {
        Vendor::NgxStorage => method != "GET",
        Vendor::Synology => {
            let m = operation.rsplit('.').next().unwrap_or_default();
            !matches!(m, "list" | "get" | "query" | "login" | "logout")
        }
    }
}

fn is_list(vendor: Vendor, (operation, method): &(String, String)) -> bool {
    match vendor {
        Vendor::NgxStorage => method == "GET",
        Vendor::Synology => operation.ends_with(".list"),
    }
}

fn by_operation<'a>(calls: impl Iterator<Item = &'a (String, String)>) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for (op, _) in calls {
        *m.entry(op.clone()).or_insert(0) += 1;
    }
    m
}

fn status_kib(pid: Option<u32>, field: &str) -> u64 {
    let path = match pid {
        Some(p) => format!("/proc/{p}/status"),
        None => "/proc/self/status".to_string(),
    };
    std::fs::read_to_string(path)
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

/// CPU seconds (user + system) this process has used, from
/// `/proc/self/stat` (fields 14 and 15, in USER_HZ ticks, which Linux
/// reports at 100 per second whatever the kernel's own tick): a cost that,
/// unlike wall time, does not grow when other programs share the cores.
fn cpu_seconds() -> f64 {
    std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|s| {
            // The command name (field 2) may hold spaces: count after it.
            let rest = &s[s.rfind(')')? + 2..];
            let f: Vec<&str> = rest.split_whitespace().collect();
            let utime: f64 = f.get(11)?.parse().ok()?;
            let stime: f64 = f.get(12)?.parse().ok()?;
            Some((utime + stime) / 100.0)
        })
        .unwrap_or(0.0)
}

fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

// ---------------------------------------------------------------------------
// The simulator, in a child process (the default) or in this one.

/// What the parent needs to connect to a simulator.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
struct SimInfo {
    url: String,
    ca: Option<String>,
    owner: Option<String>,
}

/// A simulator in this process.
struct InProcess {
    calls: CallLog,
    faults: array_operator::sim::faults::Faults,
    _ngx: Option<NgxSim>,
    _dsm: Option<array_operator::sim::dsm::DsmSim>,
    info: SimInfo,
}

async fn start_in_process(vendor: Vendor, luns: usize, targets: usize) -> InProcess {
    match vendor {
        Vendor::NgxStorage => {
            let sim = NgxSim::start(SimConfig {
                token: NGX_TOKEN.into(),
                ..SimConfig::default()
            })
            .await
            .expect("NGX simulator");
            InProcess {
                calls: sim.calls().clone(),
                faults: sim.faults().clone(),
                info: SimInfo {
                    url: sim.base_url(),
                    ca: sim.ca_pem(),
                    owner: Some(sim.owners()[0].clone()),
                },
                _ngx: Some(sim),
                _dsm: None,
            }
        }
        Vendor::Synology => {
            let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
                .await
                .expect("DSM simulator");
            sim.state().update(|s| {
                s.limits.max_luns = luns.max(1) * 2;
                s.limits.max_targets = targets.max(1) * 2;
            });
            InProcess {
                calls: sim.calls().clone(),
                faults: sim.faults().clone(),
                info: SimInfo {
                    url: sim.base_url(),
                    ca: sim.ca_pem().map(str::to_string),
                    owner: None,
                },
                _ngx: None,
                _dsm: Some(sim),
            }
        }
    }
}

fn summary(calls: &[RecordedCall]) -> Vec<(String, String)> {
    calls
        .iter()
        .map(|c| (c.operation.clone(), c.http_method.clone()))
        .collect()
}

/// The child side: serve one simulator; answer `clear`, `calls`, `rss` and
/// `latency N` on stdin, one JSON line each on stdout.
fn serve_child(vendor: &str, luns: usize, targets: usize) {
    let vendor = if vendor == "ngx" {
        Vendor::NgxStorage
    } else {
        Vendor::Synology
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let sim = rt.block_on(start_in_process(vendor, luns, targets));
    let mut out = std::io::stdout().lock();
    let say = |out: &mut std::io::StdoutLock<'_>, v: serde_json::Value| {
        writeln!(out, "{v}").expect("stdout");
        out.flush().expect("stdout");
    };
    say(&mut out, serde_json::to_value(&sim.info).expect("info"));
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("clear") => {
                sim.calls.clear();
                say(&mut out, serde_json::json!("ok"));
            }
            Some("calls") => say(
                &mut out,
                serde_json::to_value(summary(&sim.calls.calls())).expect("calls"),
            ),
            Some("cpu") => say(&mut out, serde_json::json!(cpu_seconds())),
            Some("rss") => say(
                &mut out,
                serde_json::json!([status_kib(None, "VmHWM:"), status_kib(None, "VmRSS:")]),
            ),
            Some("latency") => {
                let ms = words.next().and_then(|v| v.parse().ok()).unwrap_or(0);
                sim.faults.set_latency(Duration::from_millis(ms));
                say(&mut out, serde_json::json!("ok"));
            }
            _ => break,
        }
    }
    drop(sim);
    rt.shutdown_timeout(Duration::from_secs(1));
}

/// A simulator child process and its control channel.
struct Child {
    child: tokio::process::Child,
    stdin: tokio::process::ChildStdin,
    stdout: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
}

impl Child {
    async fn ask(&mut self, command: &str) -> serde_json::Value {
        self.stdin
            .write_all(format!("{command}\n").as_bytes())
            .await
            .expect("simulator stdin");
        self.stdin.flush().await.expect("simulator stdin");
        let line = self
            .stdout
            .next_line()
            .await
            .expect("simulator stdout")
            .expect("simulator answered");
        serde_json::from_str(&line).expect("simulator JSON")
    }
}

/// Either kind of simulator, behind one interface.
enum Sim {
    Local(InProcess),
    Child(Child),
}

impl Sim {
    async fn start(vendor: Vendor, a: &Args) -> (Sim, SimInfo) {
        if a.in_process {
            let s = start_in_process(vendor, a.luns, a.targets).await;
            let info = s.info.clone();
            let mut sim = Sim::Local(s);
            sim.latency(a.latency_ms).await;
            return (sim, info);
        }
        let exe = std::env::current_exe().expect("bench executable");
        let mut child = tokio::process::Command::new(exe)
            .arg("--serve-sim")
            .arg(if vendor == Vendor::NgxStorage {
                "ngx"
            } else {
                "dsm"
            })
            .arg(a.luns.to_string())
            .arg(a.targets.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("simulator child");
        let stdin = child.stdin.take().expect("stdin");
        let mut stdout = BufReader::new(child.stdout.take().expect("stdout")).lines();
        let first = stdout
            .next_line()
            .await
            .expect("simulator stdout")
            .expect("simulator started");
        let info: SimInfo = serde_json::from_str(&first).expect("simulator info");
        let mut sim = Sim::Child(Child {
            child,
            stdin,
            stdout,
        });
        sim.latency(a.latency_ms).await;
        (sim, info)
    }

    async fn latency(&mut self, ms: u64) {
        match self {
            Sim::Local(s) => s.faults.set_latency(Duration::from_millis(ms)),
            Sim::Child(c) => {
                c.ask(&format!("latency {ms}")).await;
            }
        }
    }

    async fn clear(&mut self) {
        match self {
            Sim::Local(s) => s.calls.clear(),
            Sim::Child(c) => {
                c.ask("clear").await;
            }
        }
    }

    async fn calls(&mut self) -> Vec<(String, String)> {
        match self {
            Sim::Local(s) => summary(&s.calls.calls()),
            Sim::Child(c) => serde_json::from_value(c.ask("calls").await).expect("calls"),
        }
    }

    /// The simulator's CPU seconds so far (`None` in process, where the
    /// operator's figure covers both).
    async fn cpu_seconds(&mut self) -> Option<f64> {
        match self {
            Sim::Local(_) => None,
            Sim::Child(c) => c.ask("cpu").await.as_f64(),
        }
    }

    /// The simulator's own peak RSS, KiB (`None` in process).
    async fn peak_rss_kib(&mut self) -> Option<u64> {
        match self {
            Sim::Local(_) => None,
            Sim::Child(c) => c.ask("rss").await.get(0).and_then(|v| v.as_u64()),
        }
    }

    async fn stop(self) {
        if let Sim::Child(mut c) = self {
            drop(c.stdin);
            let _ = tokio::time::timeout(Duration::from_secs(5), c.child.wait()).await;
        }
    }
}

// ---------------------------------------------------------------------------
// The objects and the passes.

fn lun_spec(vendor: Vendor) -> LunSpec {
    LunSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        name: None,
        size: Quantity("1Gi".into()),
        location: (vendor == Vendor::Synology).then(|| "/volume1".to_string()),
        pool: (vendor == Vendor::NgxStorage).then(|| "pool1".to_string()),
        thin_provisioning: true,
        description: None,
        synology: None,
        ngxstorage: None,
        source: None,
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}

fn target_spec(luns: Vec<String>) -> IscsiTargetSpec {
    IscsiTargetSpec {
        array_ref: ArrayRef {
            name: "array".into(),
        },
        name: None,
        iqn: None,
        enabled: true,
        max_sessions: None,
        chap: None,
        luns,
        header_digest: None,
        data_digest: None,
        max_recv_seg_bytes: None,
        max_send_seg_bytes: None,
        portal_group: None,
        initiators: Vec::new(),
        management_policy: ManagementPolicy::Manage,
        deletion_policy: None,
    }
}

fn synced_message(
    conditions: &[k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition],
) -> String {
    conditions
        .iter()
        .find(|c| c.type_ == "Synced")
        .map(|c| format!("{}: {}", c.reason, c.message))
        .unwrap_or_default()
}

type Result1 = (Duration, bool, String);

/// Reconciles every Lun, then every target, `concurrency` at a time.
async fn reconcile_all(
    cluster: &MemoryCluster,
    handle: &ArrayHandle,
    luns: &[String],
    targets: &[String],
    concurrency: usize,
) -> Vec<Result1> {
    let mut results: Vec<Result1> = futures::stream::iter(luns.iter().cloned())
        .map(|name| async move {
            let lun = cluster.lun(NS, &name).expect("lun");
            let t = Instant::now();
            let out = engine::lifecycle::reconcile(&lun, handle, cluster).await;
            let took = t.elapsed();
            let why = synced_message(&out.status.common.conditions);
            let mut stored = cluster.lun(NS, &name).expect("lun");
            stored.status = Some(out.status);
            cluster.put_lun(stored);
            (took, out.progress == Progress::Converged, why)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let target_results: Vec<Result1> = futures::stream::iter(targets.iter().cloned())
        .map(|name| async move {
            let t0 = cluster.target(NS, &name).expect("target");
            let t = Instant::now();
            let out = engine::lifecycle::reconcile(&t0, handle, cluster).await;
            let took = t.elapsed();
            let why = synced_message(&out.status.common.conditions);
            let mut stored = cluster.target(NS, &name).expect("target");
            stored.status = Some(out.status);
            cluster.put_target(stored);
            (took, out.progress == Progress::Converged, why)
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.extend(target_results);
    results
}

fn deleting<K: Resource>(mut obj: K) -> K {
    obj.meta_mut().deletion_timestamp = Some(Time(k8s_openapi::jiff::Timestamp::now()));
    obj
}

/// Deletes every target, then every Lun (the operator's deletion holds keep
/// a Lun while a target lists it), `concurrency` at a time.
async fn delete_all(
    cluster: &MemoryCluster,
    handle: &ArrayHandle,
    luns: &[String],
    targets: &[String],
    concurrency: usize,
) -> Vec<Result1> {
    let mut results: Vec<Result1> = futures::stream::iter(targets.iter().cloned())
        .map(|name| async move {
            let t0 = deleting(cluster.target(NS, &name).expect("target"));
            let t = Instant::now();
            let out = engine::lifecycle::cleanup(&t0, Some(handle), cluster).await;
            let took = t.elapsed();
            match out {
                Cleanup::Done { .. } => {
                    cluster.remove_target(NS, &name);
                    (took, true, String::new())
                }
                Cleanup::Held(o) => (took, false, synced_message(&o.status.common.conditions)),
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let lun_results: Vec<Result1> = futures::stream::iter(luns.iter().cloned())
        .map(|name| async move {
            let l0 = deleting(cluster.lun(NS, &name).expect("lun"));
            let t = Instant::now();
            let out = engine::lifecycle::cleanup(&l0, Some(handle), cluster).await;
            let took = t.elapsed();
            match out {
                Cleanup::Done { .. } => {
                    cluster.remove_lun(NS, &name);
                    (took, true, String::new())
                }
                Cleanup::Held(o) => (took, false, synced_message(&o.status.common.conditions)),
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    results.extend(lun_results);
    results
}

async fn phase(
    name: &'static str,
    sim: &mut Sim,
    run: impl std::future::Future<Output = Vec<Result1>>,
) -> Phase {
    sim.clear().await;
    peak_kib_since();
    let sim_cpu = sim.cpu_seconds().await;
    let cpu = cpu_seconds();
    let started = Instant::now();
    let results = run.await;
    let wall = started.elapsed();
    let cpu_operator = cpu_seconds() - cpu;
    let cpu_simulator = match (sim_cpu, sim.cpu_seconds().await) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let heap_peak_kib = peak_kib_since();
    let calls = sim.calls().await;
    let failed: Vec<&String> = results
        .iter()
        .filter(|(_, ok, _)| !ok)
        .map(|(_, _, why)| why)
        .collect();
    for why in failed.iter().take(3) {
        println!("  {name}: not done: {why}");
    }
    let mut durations: Vec<Duration> = results.iter().map(|(d, _, _)| *d).collect();
    durations.sort();
    Phase {
        name,
        wall,
        calls,
        durations,
        converged: failed.is_empty(),
        heap_peak_kib,
        cpu_operator,
        cpu_simulator,
    }
}

fn report(vendor: Vendor, p: &Phase, luns: usize) {
    let mutating = p.calls.iter().filter(|c| is_mutating(vendor, c)).count();
    println!(
        "{}: wall {:.2} s, {} array calls ({:.3} per Lun), {mutating} mutating, done: {}",
        p.name,
        p.wall.as_secs_f64(),
        p.calls.len(),
        p.calls.len() as f64 / luns.max(1) as f64,
        p.converged
    );
    for (op, n) in by_operation(p.calls.iter()) {
        println!("  {n:>6}  {op}");
    }
    match p.cpu_simulator {
        Some(sim) => println!(
            "  cpu: operator {:.2} s, simulator {:.2} s",
            p.cpu_operator, sim
        ),
        None => println!(
            "  cpu: operator and simulator (one process) {:.2} s",
            p.cpu_operator
        ),
    }
    println!(
        "  reconcile p50 {:.1} ms, p99 {:.1} ms; live heap peak {:.1} MiB",
        percentile(&p.durations, 0.50).as_secs_f64() * 1e3,
        percentile(&p.durations, 0.99).as_secs_f64() * 1e3,
        mib(p.heap_peak_kib)
    );
}

/// Runs one vendor; returns the budget breaches (empty when it held).
async fn bench(vendor: Vendor, a: &Args) -> Vec<String> {
    let rss_start = status_kib(None, "VmRSS:");
    let heap_start = live_kib();
    let (mut sim, info) = Sim::start(vendor, a).await;
    let config = BackendConfig {
        vendor,
        endpoint: info.url.clone(),
        secondary_endpoint: None,
        credentials: match vendor {
            Vendor::NgxStorage => Credentials::Token(SecretString::new(NGX_TOKEN)),
            Vendor::Synology => Credentials::UserPassword {
                username: DEFAULT_USERNAME.into(),
                password: SecretString::new(DEFAULT_PASSWORD),
            },
        },
        transport: TransportConfig {
            ca_bundle_pem: info.ca.clone(),
            insecure_skip_verify: false,
            request_timeout: Duration::from_secs(60),
            max_concurrent_requests: a.max_requests,
        },
        ngx_owner: info.owner.clone(),
        resize_mode: ResizeMode::Absolute,
        session_name: "bench".into(),
    };
    let backend = Backend::connect(config).await.expect("connect");
    let handle = ArrayHandle {
        key: format!("{NS}/array"),
        backend,
        cache: ObservationCache::default(),
        resync: Duration::from_secs(3600),
        dry_run: None,
    };

    let cluster = Arc::new(MemoryCluster::default());
    let lun_names: Vec<String> = (0..a.luns).map(|i| format!("lun{i:05}")).collect();
    for name in &lun_names {
        let mut l = Lun::new(name, lun_spec(vendor));
        l.meta_mut().namespace = Some(NS.into());
        l.meta_mut().generation = Some(1);
        l.meta_mut().uid = Some(format!("uid-{name}"));
        cluster.put_lun(l);
    }
    let target_names: Vec<String> = (0..a.targets).map(|i| format!("tgt{i:05}")).collect();
    let per_target = a.luns.checked_div(a.targets).unwrap_or(0).clamp(0, 10);
    for (i, name) in target_names.iter().enumerate() {
        let luns = lun_names
            .iter()
            .skip(i * per_target)
            .take(per_target)
            .cloned()
            .collect();
        let mut t = IscsiTarget::new(name, target_spec(luns));
        t.meta_mut().namespace = Some(NS.into());
        t.meta_mut().generation = Some(1);
        t.meta_mut().uid = Some(format!("uid-{name}"));
        cluster.put_target(t);
    }
    let rss_objects = status_kib(None, "VmRSS:");
    let heap_objects = live_kib();

    let c = a.concurrency;
    let converge = phase(
        "converge",
        &mut sim,
        reconcile_all(&cluster, &handle, &lun_names, &target_names, c),
    )
    .await;
    let rss_converged = status_kib(None, "VmRSS:");
    let heap_converged = live_kib();
    // Steady state: a fresh observation, then every object again.
    handle.cache.invalidate();
    let heap_without_view = live_kib();
    let steady = phase(
        "steady resync",
        &mut sim,
        reconcile_all(&cluster, &handle, &lun_names, &target_names, c),
    )
    .await;
    let delete = phase(
        "delete",
        &mut sim,
        delete_all(&cluster, &handle, &lun_names, &target_names, c),
    )
    .await;
    let operator_peak = status_kib(None, "VmHWM:");
    let sim_peak = sim.peak_rss_kib().await;

    let vendor_name = match vendor {
        Vendor::NgxStorage => "NGXStorage",
        Vendor::Synology => "Synology",
    };
    println!(
        "== {vendor_name}: {} Luns, {} targets x {per_target} Luns, {c} reconciles and {} requests in flight, latency {} ms, simulator {}",
        a.luns,
        a.targets,
        a.max_requests,
        a.latency_ms,
        if a.in_process {
            "in process"
        } else {
            "in a child process"
        }
    );
    report(vendor, &converge, a.luns);
    report(vendor, &steady, a.luns);
    let lists = by_operation(steady.calls.iter().filter(|c| is_list(vendor, c)));
    println!(
        "  list calls per object type: max {}",
        lists.values().max().copied().unwrap_or(0)
    );
    report(vendor, &delete, a.luns);
    println!(
        "memory: operator RSS {:.1} MiB at start, {:.1} MiB with the objects in the cache, {:.1} MiB converged, peak {:.1} MiB{}; simulator peak {}",
        mib(rss_start),
        mib(rss_objects),
        mib(rss_converged),
        mib(operator_peak),
        if a.vendors.len() > 1 {
            " (for both vendors so far: run one --vendor per process for its own)"
        } else {
            ""
        },
        sim_peak
            .map(|k| format!("{:.1} MiB", mib(k)))
            .unwrap_or_else(|| "(in process, included above)".into())
    );
    println!(
        "  live heap: {:.1} MiB at start, {:.1} MiB with {} objects in the cache ({:.1} KiB each), {:.1} MiB converged (+{:.1} KiB per object: statuses, create records, the array view)",
        mib(heap_start),
        mib(heap_objects),
        a.luns + a.targets,
        (heap_objects.saturating_sub(heap_start)) as f64 / (a.luns + a.targets).max(1) as f64,
        mib(heap_converged),
        (heap_converged.saturating_sub(heap_objects)) as f64 / (a.luns + a.targets).max(1) as f64,
    );
    println!(
        "  of which the array view: {:.1} MiB ({:.1} KiB per array object); the objects with their statuses and create records: {:.1} MiB",
        mib(heap_converged.saturating_sub(heap_without_view)),
        heap_converged.saturating_sub(heap_without_view) as f64
            / (a.luns + a.targets).max(1) as f64,
        mib(heap_without_view.saturating_sub(heap_start)),
    );
    handle.backend.close().await;
    sim.stop().await;

    let budget = Budget::of(vendor, a);
    let mut breaches = Vec::new();
    let steady_writes = steady
        .calls
        .iter()
        .filter(|c| is_mutating(vendor, c))
        .count();
    for (what, ok) in [
        (
            format!(
                "converge took {} calls, budget {}",
                converge.calls.len(),
                budget.converge
            ),
            converge.calls.len() <= budget.converge,
        ),
        (
            "converge needed more than one pass".to_string(),
            converge.converged,
        ),
        (
            format!(
                "steady resync wrote {steady_writes} times, budget {}",
                budget.steady_writes
            ),
            steady_writes <= budget.steady_writes && steady.converged,
        ),
        (
            format!("steady resync listed a type more than once: {lists:?}"),
            lists.values().all(|n| *n == 1),
        ),
        (
            format!(
                "delete took {} calls, budget {}",
                delete.calls.len(),
                budget.delete
            ),
            delete.calls.len() <= budget.delete && delete.converged,
        ),
    ] {
        if !ok {
            breaches.push(format!("{vendor_name}: {what}"));
        }
    }
    breaches
}

fn main() {
    let argv: Vec<String> = std::env::args().collect();
    if let Some(i) = argv.iter().position(|a| a == "--serve-sim") {
        let arg = |k: usize| argv.get(i + k).cloned().unwrap_or_default();
        serve_child(
            &arg(1),
            arg(2).parse().unwrap_or(1000),
            arg(3).parse().unwrap_or(100),
        );
        return;
    }
    if argv.iter().any(|a| a == "--help" || a == "-h") {
        println!("{HELP}");
        return;
    }
    let a = match parse_args(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(2);
        }
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let breaches = rt.block_on(async {
        let mut all = Vec::new();
        for v in a.vendors.clone() {
            all.extend(bench(v, &a).await);
        }
        all
    });
    if !breaches.is_empty() {
        for b in &breaches {
            eprintln!("FAILED: {b}");
        }
        std::process::exit(1);
    }
    if a.smoke {
        println!("smoke run: every phase within its array-call budget");
    }
}
