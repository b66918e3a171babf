//! `plan --simulate`: every StorageArray of the input is served by an
//! embedded simulator of its vendor on loopback, with credentials the plan
//! makes up (no Secret is read), seeded with a deterministic state, so the
//! plan shows each kind of answer with no hardware:
//!
//! - what the manifests take as given on the array exists: the DSM volumes
//!   (`spec.location`), VMM storages, networks and images, and Snapshot
//!   Replication plans (`spec.planId`) they name; the NGXStorage pools
//!   (`spec.pool`) and portal groups (`spec.portalGroup`), and the
//!   controller pair `spec.ngxstorage.owner` names;
//! - the first Lun of each array (in the order the operator makes them)
//!   already exists at half its size, created earlier by the operator (its
//!   create records and `status.externalId` are set in the plan's
//!   in-memory cluster, as the operator would have left them): the plan
//!   shows it growing;
//! - the array's second Lun, if it has one, finds a foreign LUN of its
//!   array-side name, which nobody adopted: the plan shows the
//!   `AlreadyExists` refusal the controller would write.
//!
//! The existing objects are made through the vendor adapter (as the
//! operator would make them), before the plan starts; the simulators'
//! call logs are cleared after, so they hold the plan's calls alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use crate::array::backend::{Backend, BackendConfig, BackendError, Credentials};
use crate::array::transport::TransportConfig;
use crate::controller::arrays::ArrayAccessError;
use crate::crd::StorageArray;
use crate::crd::shared::size_bytes;
use crate::crd::storage_array::Vendor;
use crate::engine::lifecycle::uid_of;
use crate::engine::{array_side_name, parse_duration};
use crate::model::SecretString;
use crate::reconcile::identity;
use crate::sim::dsm::state::{SimCredentials, SimImage, SimNetwork, SimStorage, Volume};
use crate::sim::dsm::{DsmSim, DsmSimConfig};
use crate::sim::faults::RecordedCall;
use crate::sim::ngx::state::{SimPool, SimPortalGroup};
use crate::sim::ngx::{NgxSim, SimConfig, SimState};

use super::input::Manifests;
use super::run::{ArrayConfig, ordered};

/// The DSM account the simulators accept (made up by plan; not a secret
/// anyone holds).
pub const SIM_USERNAME: &str = "plan";
/// Its password.
pub const SIM_PASSWORD: &str = "plan-simulated-array";
/// The NGXStorage token the simulators accept.
pub const SIM_TOKEN: &str = "plan-simulated-token";
/// The DSM session name of the plan.
pub const SESSION_NAME: &str = "array-operator-plan";
const GIB: u64 = 1 << 30;

/// Why the simulators could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SimulateError {
    /// A simulator did not start.
    #[error("starting the simulated array for StorageArray {array}: {problem}")]
    Start {
        /// The StorageArray.
        array: String,
        /// What failed.
        problem: String,
    },
    /// Seeding an existing object failed.
    #[error("seeding the simulated array for StorageArray {array}: {error}")]
    Seed {
        /// The StorageArray.
        array: String,
        /// The adapter's error.
        error: BackendError,
    },
}

/// One running simulator.
#[derive(Debug)]
pub enum Sim {
    /// A Synology DSM.
    Dsm(DsmSim),
    /// An NGXStorage array.
    Ngx(NgxSim),
}

impl Sim {
    /// Every call it received since the seed.
    pub fn calls(&self) -> Vec<RecordedCall> {
        match self {
            Sim::Dsm(s) => s.calls().calls(),
            Sim::Ngx(s) => s.calls().calls(),
        }
    }

    /// Forgets the calls received so far.
    pub fn clear_calls(&self) {
        match self {
            Sim::Dsm(s) => s.calls().clear(),
            Sim::Ngx(s) => s.calls().clear(),
        }
    }

    /// True when a call can change the array: on NGXStorage anything but a
    /// GET; on DSM any method but a read, login or logout.
    pub fn is_mutating(&self, call: &RecordedCall) -> bool {
        match self {
            Sim::Ngx(_) => call.http_method != "GET",
            Sim::Dsm(_) => {
                let method = call.operation.rsplit('.').next().unwrap_or_default();
                let read = matches!(
                    method,
                    "list" | "get" | "getinfo" | "query" | "login" | "logout" | "list_snapshot"
                );
                !read && !call.operation.starts_with("SYNO.API.")
            }
        }
    }

    async fn stop(&mut self) {
        match self {
            Sim::Dsm(s) => s.stop().await,
            Sim::Ngx(s) => s.stop().await,
        }
    }
}

/// The simulators of one plan, by StorageArray `namespace/name`.
#[derive(Debug)]
pub struct Simulated {
    /// The simulators.
    pub sims: BTreeMap<String, Sim>,
    configs: BTreeMap<String, (BackendConfig, Duration)>,
}

impl Simulated {
    /// The backend configuration of each simulated array.
    pub fn configs(&self) -> BTreeMap<String, ArrayConfig> {
        self.configs
            .iter()
            .map(|(k, v)| (k.clone(), Ok::<_, ArrayAccessError>(v.clone())))
            .collect()
    }

    /// The calls that could change an array, as `array: operation`.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.sims
            .iter()
            .flat_map(|(k, s)| {
                s.calls()
                    .into_iter()
                    .filter(|c| s.is_mutating(c))
                    .map(move |c| format!("{k}: {}", c.operation))
            })
            .collect()
    }

    /// Forgets every simulator's calls.
    pub fn clear_calls(&self) {
        for s in self.sims.values() {
            s.clear_calls();
        }
    }

    /// Stops every simulator.
    pub async fn stop(mut self) {
        for s in self.sims.values_mut() {
            s.stop().await;
        }
    }
}

fn key_of(sa: &StorageArray) -> (String, String, String) {
    let ns = sa.metadata.namespace.clone().unwrap_or_default();
    let name = sa.metadata.name.clone().unwrap_or_default();
    (format!("{ns}/{name}"), ns, name)
}

/// Starts one seeded simulator per StorageArray of `m`, and records in `m`
/// what the operator would have recorded about the objects it made
/// earlier (see the module docs).
pub async fn start(m: &mut Manifests) -> Result<Simulated, SimulateError> {
    let mut sims = BTreeMap::new();
    let mut configs = BTreeMap::new();
    let arrays = m.storage_arrays.clone();
    for sa in &arrays {
        let (key, ns, name) = key_of(sa);
        let on_array = |array_ref: &str, namespace: &Option<String>| {
            array_ref == name && namespace.as_deref() == Some(ns.as_str())
        };
        let start_err = |problem: String| SimulateError::Start {
            array: key.clone(),
            problem,
        };
        let (sim, endpoint, ca, credentials) = match sa.spec.vendor {
            Vendor::Synology => {
                let mut config = DsmSimConfig {
                    credentials: SimCredentials {
                        username: SIM_USERNAME.into(),
                        password: SIM_PASSWORD.into(),
                    },
                    ..DsmSimConfig::default()
                };
                let state = &mut config.state;
                state.hostname = name.clone();
                let template = state.plans.first().cloned();
                state.plans.clear();
                let mut volumes = BTreeSet::new();
                for l in m
                    .luns
                    .iter()
                    .filter(|l| on_array(&l.spec.array_ref.name, &l.metadata.namespace))
                {
                    volumes.extend(l.spec.location.clone());
                }
                for v in volumes {
                    if !state.volumes.iter().any(|x| x.path == v) {
                        state.volumes.push(Volume {
                            path: v,
                            total_bytes: crate::sim::dsm::seed::VOLUME1_BYTES,
                        });
                    }
                }
                for p in m
                    .replication_plans
                    .iter()
                    .filter(|p| on_array(&p.spec.array_ref.name, &p.metadata.namespace))
                {
                    if let Some(t) = &template
                        && !state.plans.iter().any(|x| x.plan_id == p.spec.plan_id)
                    {
                        let mut plan = t.clone();
                        plan.plan_id = p.spec.plan_id.clone();
                        state.plans.push(plan);
                    }
                }
                let volume = state
                    .volumes
                    .first()
                    .map(|v| v.path.clone())
                    .unwrap_or_default();
                for (i, vm) in m
                    .vms
                    .iter()
                    .filter(|v| on_array(&v.spec.array_ref.name, &v.metadata.namespace))
                    .enumerate()
                {
                    if !state
                        .storages
                        .iter()
                        .any(|s| s.storage_name == vm.spec.storage)
                    {
                        state.storages.push(SimStorage {
                            storage_id: made_up_id("storage", i),
                            storage_name: vm.spec.storage.clone(),
                            volume_path: volume.clone(),
                            size: crate::sim::dsm::seed::VOLUME1_BYTES,
                            used: 0,
                        });
                    }
                    for (j, nic) in vm.spec.nics.iter().enumerate() {
                        if !state.networks.iter().any(|n| n.network_name == nic.network) {
                            state.networks.push(SimNetwork {
                                network_id: made_up_id("network", i * 16 + j),
                                network_name: nic.network.clone(),
                            });
                        }
                    }
                    for (j, image) in vm.spec.disks.iter().flat_map(|d| &d.image).enumerate() {
                        if !state.images.iter().any(|x| &x.image_name == image) {
                            state.images.push(SimImage {
                                image_id: made_up_id("image", i * 16 + j),
                                image_name: image.clone(),
                                kind: "disk".into(),
                                size_mb: 10240,
                            });
                        }
                    }
                }
                let sim = crate::sim::dsm::start(config)
                    .await
                    .map_err(|e| start_err(e.to_string()))?;
                let endpoint = sim.base_url();
                let ca = sim.ca_pem().map(str::to_string);
                (
                    Sim::Dsm(sim),
                    endpoint,
                    ca,
                    Credentials::UserPassword {
                        username: SIM_USERNAME.into(),
                        password: SecretString::new(SIM_PASSWORD),
                    },
                )
            }
            Vendor::NgxStorage => {
                let owner = sa
                    .spec
                    .ngxstorage
                    .as_ref()
                    .map(|n| n.owner.clone())
                    .unwrap_or_else(|| "SIM0001_A".into());
                let tag = owner
                    .strip_suffix("_A")
                    .or_else(|| owner.strip_suffix("_B"))
                    .unwrap_or(&owner)
                    .to_string();
                let mut state = crate::sim::ngx::seed::seed(&tag);
                let owner_a = format!("{tag}_A");
                let mut pools = BTreeSet::new();
                for l in m
                    .luns
                    .iter()
                    .filter(|l| on_array(&l.spec.array_ref.name, &l.metadata.namespace))
                {
                    pools.extend(l.spec.pool.clone());
                }
                for (i, p) in pools.into_iter().enumerate() {
                    if state.pool_by_name(&p).is_none() {
                        let id = made_up_hex("pool", i);
                        state.pools.insert(
                            id.clone(),
                            SimPool {
                                id,
                                name: p,
                                owner: owner_a.clone(),
                                total_bytes: crate::sim::ngx::seed::POOL1_BYTES,
                                is_flash: false,
                            },
                        );
                    }
                }
                let mut groups = BTreeSet::new();
                for t in m
                    .targets
                    .iter()
                    .filter(|t| on_array(&t.spec.array_ref.name, &t.metadata.namespace))
                {
                    groups.extend(t.spec.portal_group.clone());
                }
                for (i, g) in groups.into_iter().enumerate() {
                    if state
                        .portal_groups
                        .values()
                        .any(|p| p.name == g || p.id == g)
                    {
                        continue;
                    }
                    if i == 0 {
                        // The seeded group takes the first name asked for, so
                        // an array named with one group has exactly one.
                        if let Some(pg) = state.portal_groups.values_mut().next() {
                            pg.name = g;
                            continue;
                        }
                    }
                    let id = made_up_hex("portal", i);
                    state.portal_groups.insert(
                        id.clone(),
                        SimPortalGroup {
                            id,
                            name: g,
                            owner: owner_a.clone(),
                            listen_ips: vec!["127.0.0.1".into()],
                        },
                    );
                }
                let sim = NgxSim::start(SimConfig {
                    token: SIM_TOKEN.into(),
                    owner_tag: tag,
                    state: Some(SimState::new(state)),
                    ..SimConfig::default()
                })
                .await
                .map_err(|e| start_err(e.to_string()))?;
                let endpoint = sim.base_url();
                let ca = sim.ca_pem();
                (
                    Sim::Ngx(sim),
                    endpoint,
                    ca,
                    Credentials::Token(SecretString::new(SIM_TOKEN)),
                )
            }
        };
        let spec = &sa.spec;
        let config = BackendConfig {
            vendor: spec.vendor,
            endpoint,
            secondary_endpoint: None,
            credentials,
            transport: TransportConfig {
                ca_bundle_pem: ca,
                insecure_skip_verify: false,
                request_timeout: parse_duration(&spec.request_timeout)
                    .unwrap_or(Duration::from_secs(30)),
                max_concurrent_requests: usize::try_from(spec.max_concurrent_requests.max(1))
                    .unwrap_or(4),
            },
            ngx_owner: spec.ngxstorage.as_ref().map(|n| n.owner.clone()),
            resize_mode: spec
                .ngxstorage
                .as_ref()
                .map(|n| n.resize_mode)
                .unwrap_or_default(),
            session_name: SESSION_NAME.into(),
        };
        let resync = parse_duration(&spec.resync_interval).unwrap_or(Duration::from_secs(300));
        seed_existing(m, &key, &ns, &name, &config).await?;
        sim.clear_calls();
        sims.insert(key.clone(), sim);
        configs.insert(key, (config, resync));
    }
    Ok(Simulated { sims, configs })
}

/// An id in the shape of the simulators' uuids, made from a word and a
/// number (so a run gives the same ids).
fn made_up_id(word: &str, n: usize) -> String {
    let hex: String = word
        .bytes()
        .map(|b| format!("{:02x}", b))
        .collect::<String>()
        .chars()
        .chain(std::iter::repeat('0'))
        .take(8)
        .collect();
    format!("{hex}-0000-4000-8000-{n:012x}")
}

/// A 40-hex-digit id as NGXStorage gives them.
fn made_up_hex(word: &str, n: usize) -> String {
    let mut hex: String = word.bytes().map(|b| format!("{:02x}", b)).collect();
    hex.push_str(&format!("{n:x}"));
    format!("{hex:0<40}").chars().take(40).collect()
}

/// Makes the existing objects of the seed on the simulator at `config`.
async fn seed_existing(
    m: &mut Manifests,
    key: &str,
    ns: &str,
    name: &str,
    config: &BackendConfig,
) -> Result<(), SimulateError> {
    let seed_err = |error: BackendError| SimulateError::Seed {
        array: key.to_string(),
        error,
    };
    let luns: Vec<String> = ordered(m)
        .into_iter()
        .filter(|r| r.kind == "Lun" && r.namespace == ns)
        .map(|r| r.name)
        .filter(|n| {
            m.luns.iter().any(|l| {
                l.metadata.name.as_deref() == Some(n.as_str())
                    && l.metadata.namespace.as_deref() == Some(ns)
                    && l.spec.array_ref.name == name
            })
        })
        .collect();
    if luns.is_empty() {
        return Ok(());
    }
    let backend = Backend::connect(config.clone()).await.map_err(seed_err)?;
    let result = async {
        for (i, lun_name) in luns.iter().take(2).enumerate() {
            let Some(lun) = m.luns.iter_mut().find(|l| {
                l.metadata.name.as_deref() == Some(lun_name.as_str())
                    && l.metadata.namespace.as_deref() == Some(ns)
            }) else {
                continue;
            };
            let Some(bytes) = size_bytes(&lun.spec.size.0) else {
                continue;
            };
            let array_name = array_side_name(lun.spec.name.as_ref(), &lun.metadata);
            let mut spec = lun.spec.clone();
            spec.source = None;
            let size = if i == 0 {
                // Half the size, in whole GiB: the plan grows it.
                ((bytes / 2) / GIB).max(1) * GIB
            } else {
                // Someone else's LUN of the name.
                GIB
            };
            if i == 1 {
                spec.description = Some("made outside the operator".into());
            }
            let Ok(desired) =
                backend.desired_lun(&spec, array_name.clone(), "metadata.name", size, None)
            else {
                // A spec the vendor refuses: the plan says so; nothing
                // to seed.
                continue;
            };
            let id = backend.create_lun(&desired).await?.id;
            if i == 0 {
                let uid = uid_of(&lun.metadata);
                let at = crate::engine::timestamp();
                let annotations = lun.metadata.annotations.get_or_insert_with(BTreeMap::new);
                annotations.extend(identity::pending_annotations(&uid, &at, &array_name));
                annotations.extend(identity::succeeded_annotations(&uid, &at, &id));
                let status = lun.status.get_or_insert_with(Default::default);
                status.common.external_id = Some(id);
                // The operator saw this generation through once.
                status.common.observed_generation = lun.metadata.generation;
            }
        }
        Ok::<(), BackendError>(())
    }
    .await;
    backend.close().await;
    result.map_err(seed_err)
}
