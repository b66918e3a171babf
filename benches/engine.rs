//! The engine at scale against each simulator (`cargo bench --bench engine`).
//!
//! 1,000 Luns and 100 targets that map 10 Luns each are converged from
//! nothing, then resynced in steady state. Printed: wall time, array calls
//! by type and per object, p50/p99 reconcile time, and peak RSS. The
//! simulator runs in the same process, so the RSS covers both.
//!
//! Flags (after `--`): `--luns N`, `--targets N`, `--vendor ngx|dsm|both`,
//! `--concurrency N`. Run by `cargo test` (without `--bench`) it does 20
//! Luns and 2 targets, as a smoke test.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use array_operator::array::backend::{Backend, BackendConfig, Credentials};
use array_operator::array::transport::TransportConfig;
use array_operator::crd::iscsi_target::IscsiTargetSpec;
use array_operator::crd::lun::LunSpec;
use array_operator::crd::shared::{ArrayRef, ManagementPolicy};
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::crd::{IscsiTarget, Lun};
use array_operator::engine::memory::MemoryCluster;
use array_operator::engine::{self, ArrayHandle, ObservationCache, Progress};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSimConfig};
use array_operator::sim::faults::{CallLog, RecordedCall};
use array_operator::sim::ngx::{NgxSim, SimConfig};
use futures::StreamExt;
use k8s_openapi::apimachinery::pkg::api::resource::Quantity;
use kube::Resource;

const NS: &str = "bench";

struct Args {
    luns: usize,
    targets: usize,
    vendors: Vec<Vendor>,
    concurrency: usize,
}

fn args() -> Args {
    let argv: Vec<String> = std::env::args().collect();
    // `cargo bench` passes --bench; under `cargo test` the same program runs
    // as a quick smoke test of the whole path.
    let full = argv.iter().any(|a| a == "--bench");
    let mut a = Args {
        luns: if full { 1000 } else { 20 },
        targets: if full { 100 } else { 2 },
        vendors: vec![Vendor::NgxStorage, Vendor::Synology],
        concurrency: 16,
    };
    let mut i = 1;
    while i < argv.len() {
        let value = argv.get(i + 1).cloned().unwrap_or_default();
        match argv[i].as_str() {
            "--luns" => a.luns = value.parse().unwrap_or(a.luns),
            "--targets" => a.targets = value.parse().unwrap_or(a.targets),
            "--concurrency" => a.concurrency = value.parse().unwrap_or(a.concurrency),
            "--vendor" => {
                a.vendors = match value.as_str() {
                    "ngx" => vec![Vendor::NgxStorage],
                    "dsm" => vec![Vendor::Synology],
                    _ => a.vendors,
                }
            }
            _ => {
                i += 1;
                continue;
            }
        }
        i += 2;
    }
    a
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

fn peak_rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn is_mutating(vendor: Vendor, c: &RecordedCall) -> bool {
    match vendor {
        Vendor::NgxStorage => c.http_method != "GET",
        Vendor::Synology => {
            let m = c.operation.rsplit('.').next().unwrap_or_default();
            !matches!(m, "list" | "get" | "query" | "login" | "logout")
        }
    }
}

fn is_list(vendor: Vendor, c: &RecordedCall) -> bool {
    match vendor {
        Vendor::NgxStorage => c.http_method == "GET",
        Vendor::Synology => c.operation.ends_with(".list"),
    }
}

fn by_operation(calls: &[RecordedCall]) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for c in calls {
        *m.entry(c.operation.clone()).or_insert(0) += 1;
    }
    m
}

struct Running {
    config: BackendConfig,
    calls: CallLog,
    _ngx: Option<NgxSim>,
    _dsm: Option<array_operator::sim::dsm::DsmSim>,
}

async fn start(vendor: Vendor, luns: usize, targets: usize, concurrency: usize) -> Running {
    let transport = |ca: Option<String>| TransportConfig {
        ca_bundle_pem: ca,
        insecure_skip_verify: false,
        request_timeout: Duration::from_secs(30),
        max_concurrent_requests: concurrency.max(1),
    };
    match vendor {
        Vendor::NgxStorage => {
            let sim = NgxSim::start(SimConfig {
                token: "bench-token".into(),
                ..SimConfig::default()
            })
            .await
            .expect("NGX simulator");
            let config = BackendConfig {
                vendor,
                endpoint: sim.base_url(),
                secondary_endpoint: None,
                credentials: Credentials::Token(SecretString::new("bench-token")),
                transport: transport(sim.ca_pem()),
                ngx_owner: Some(sim.owners()[0].clone()),
                resize_mode: ResizeMode::Absolute,
                session_name: "bench".into(),
            };
            Running {
                config,
                calls: sim.calls().clone(),
                _ngx: Some(sim),
                _dsm: None,
            }
        }
        Vendor::Synology => {
            let sim = array_operator::sim::dsm::start(DsmSimConfig::default())
                .await
                .expect("DSM simulator");
            sim.state().update(|s| {
                s.limits.max_luns = luns * 2;
                s.limits.max_targets = targets * 2;
            });
            let config = BackendConfig {
                vendor,
                endpoint: sim.base_url(),
                secondary_endpoint: None,
                credentials: Credentials::UserPassword {
                    username: DEFAULT_USERNAME.into(),
                    password: SecretString::new(DEFAULT_PASSWORD),
                },
                transport: transport(sim.ca_pem().map(str::to_string)),
                ngx_owner: None,
                resize_mode: ResizeMode::Absolute,
                session_name: "bench".into(),
            };
            Running {
                config,
                calls: sim.calls().clone(),
                _ngx: None,
                _dsm: Some(sim),
            }
        }
    }
}

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

/// Reconciles every Lun, then every target, `concurrency` at a time;
/// returns each reconcile's duration and whether all converged.
async fn pass(
    cluster: &MemoryCluster,
    handle: &ArrayHandle,
    luns: &[String],
    targets: &[String],
    concurrency: usize,
) -> (Vec<Duration>, bool) {
    let lun_results: Vec<(Duration, Progress, String)> =
        futures::stream::iter(luns.iter().cloned())
            .map(|name| async move {
                let lun = cluster.lun(NS, &name).expect("lun");
                let t = Instant::now();
                let out = engine::lifecycle::reconcile(&lun, handle, cluster).await;
                let took = t.elapsed();
                let why = synced_message(&out.status.common.conditions);
                let mut stored = cluster.lun(NS, &name).expect("lun");
                stored.status = Some(out.status);
                cluster.put_lun(stored);
                (took, out.progress, why)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let target_results: Vec<(Duration, Progress, String)> =
        futures::stream::iter(targets.iter().cloned())
            .map(|name| async move {
                let t0 = cluster.target(NS, &name).expect("target");
                let t = Instant::now();
                let out = engine::lifecycle::reconcile(&t0, handle, cluster).await;
                let took = t.elapsed();
                let why = synced_message(&out.status.common.conditions);
                let mut stored = cluster.target(NS, &name).expect("target");
                stored.status = Some(out.status);
                cluster.put_target(stored);
                (took, out.progress, why)
            })
            .buffer_unordered(concurrency)
            .collect()
            .await;
    let not_converged: Vec<&String> = lun_results
        .iter()
        .chain(target_results.iter())
        .filter(|(_, p, _)| *p != Progress::Converged)
        .map(|(_, _, why)| why)
        .collect();
    for why in not_converged.iter().take(3) {
        println!("  not converged: {why}");
    }
    let all_converged = not_converged.is_empty();
    let durations = lun_results
        .into_iter()
        .chain(target_results)
        .map(|(d, _, _)| d)
        .collect();
    (durations, all_converged)
}

/// Runs one vendor; returns whether it converged in one pass and resynced
/// with no change and one list per object type.
async fn bench(vendor: Vendor, a: &Args) -> bool {
    let running = start(vendor, a.luns, a.targets, a.concurrency).await;
    let backend = Backend::connect(running.config.clone())
        .await
        .expect("connect");
    let handle = ArrayHandle {
        key: format!("{NS}/array"),
        backend,
        cache: ObservationCache::default(),
        resync: Duration::from_secs(3600),
    };
    let cluster = MemoryCluster::default();
    let lun_names: Vec<String> = (0..a.luns).map(|i| format!("lun{i:05}")).collect();
    for name in &lun_names {
        let mut l = Lun::new(name, lun_spec(vendor));
        l.meta_mut().namespace = Some(NS.into());
        l.meta_mut().generation = Some(1);
        cluster.put_lun(l);
    }
    let target_names: Vec<String> = (0..a.targets).map(|i| format!("tgt{i:04}")).collect();
    let per_target = a.luns.checked_div(a.targets).unwrap_or(0).min(10);
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
        cluster.put_target(t);
    }

    running.calls.clear();
    let started = Instant::now();
    let mut durations = Vec::new();
    let mut passes = 0;
    loop {
        passes += 1;
        let (d, converged) =
            pass(&cluster, &handle, &lun_names, &target_names, a.concurrency).await;
        durations.extend(d);
        if converged || passes >= 3 {
            break;
        }
    }
    let converge_wall = started.elapsed();
    let converge_calls = running.calls.calls();
    durations.sort();

    // Steady state: a fresh observation, then every object again.
    handle.cache.invalidate();
    running.calls.clear();
    let started = Instant::now();
    let (mut steady, steady_converged) =
        pass(&cluster, &handle, &lun_names, &target_names, a.concurrency).await;
    let steady_wall = started.elapsed();
    let steady_calls = running.calls.calls();
    steady.sort();

    let objects = a.luns + a.targets;
    let vendor_name = match vendor {
        Vendor::NgxStorage => "NGXStorage",
        Vendor::Synology => "Synology",
    };
    println!(
        "== {vendor_name}: {} Luns, {} targets x {per_target} Luns, concurrency {}",
        a.luns, a.targets, a.concurrency
    );
    println!(
        "converge: {passes} pass(es), wall {:.2} s, {} array calls ({:.2} per Lun, {:.2} per object)",
        converge_wall.as_secs_f64(),
        converge_calls.len(),
        converge_calls.len() as f64 / a.luns.max(1) as f64,
        converge_calls.len() as f64 / objects.max(1) as f64
    );
    for (op, n) in by_operation(&converge_calls) {
        println!("  {n:>6}  {op}");
    }
    println!(
        "  reconcile p50 {:.1} ms, p99 {:.1} ms",
        percentile(&durations, 0.50).as_secs_f64() * 1e3,
        percentile(&durations, 0.99).as_secs_f64() * 1e3
    );
    let mutating = steady_calls
        .iter()
        .filter(|c| is_mutating(vendor, c))
        .count();
    let lists = by_operation(
        &steady_calls
            .iter()
            .filter(|c| is_list(vendor, c))
            .cloned()
            .collect::<Vec<_>>(),
    );
    println!(
        "steady resync: wall {:.2} s, {} array calls, {mutating} mutating, converged: {steady_converged}",
        steady_wall.as_secs_f64(),
        steady_calls.len()
    );
    for (op, n) in by_operation(&steady_calls) {
        println!("  {n:>6}  {op}");
    }
    println!(
        "  list calls per object type: max {}",
        lists.values().max().copied().unwrap_or(0)
    );
    println!(
        "  reconcile p50 {:.1} ms, p99 {:.1} ms",
        percentile(&steady, 0.50).as_secs_f64() * 1e3,
        percentile(&steady, 0.99).as_secs_f64() * 1e3
    );
    println!(
        "peak RSS so far (engine + in-process simulators): {:.1} MiB",
        peak_rss_kib() as f64 / 1024.0
    );
    handle.backend.close().await;
    passes == 1 && steady_converged && mutating == 0 && lists.values().all(|n| *n == 1)
}

fn main() {
    let a = args();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let ok = rt.block_on(async {
        let mut ok = true;
        for v in a.vendors.clone() {
            ok &= bench(v, &a).await;
        }
        ok
    });
    if !ok {
        eprintln!(
            "FAILED: a run did not converge in one pass, or its resync changed something or listed a type twice"
        );
        std::process::exit(1);
    }
}
