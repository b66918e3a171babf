//! Both simulators behind one face: start, the backend config to reach it,
//! its fault plan and call log, and what it holds (read from its state, not
//! through the API, so checking adds no call to the log).

use std::time::Duration;

use array_operator::array::backend::{BackendConfig, Credentials};
use array_operator::array::ngxstorage::Endpoint;
use array_operator::array::transport::TransportConfig;
use array_operator::crd::storage_array::{ResizeMode, Vendor};
use array_operator::model::SecretString;
use array_operator::sim::dsm::{DEFAULT_PASSWORD, DEFAULT_USERNAME, DsmSim, DsmSimConfig};
use array_operator::sim::faults::{CallLog, FaultAction, Faults, RecordedCall};
use array_operator::sim::ngx::{NgxSim, SimConfig};

/// The NGX bearer token the tests use (checked for in the logs).
pub const NGX_TOKEN: &str = "chaos-ngx-token-5e1d";
/// The DSM password the tests use (checked for in the logs).
pub const DSM_PASSWORD: &str = DEFAULT_PASSWORD;

/// A running simulator of either vendor.
pub enum Sim {
    /// NGXStorage.
    Ngx(NgxSim),
    /// Synology DSM.
    Dsm(DsmSim),
}

/// One LUN as the array holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayLun {
    /// The id the operator knows it by (NGX vol_id, DSM uuid).
    pub id: String,
    /// Its name.
    pub name: String,
    /// Everything the simulator holds about it, for "was it changed".
    pub fingerprint: String,
}

/// One target as the array holds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArrayTarget {
    /// The id the operator knows it by.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Ids of the LUNs mapped to it.
    pub luns: Vec<String>,
    /// Everything the simulator holds about it (secrets redacted).
    pub fingerprint: String,
}

impl Sim {
    /// Starts a simulator of `vendor` on loopback, over TLS.
    pub async fn start(vendor: Vendor) -> Sim {
        match vendor {
            Vendor::NgxStorage => Sim::Ngx(
                NgxSim::start(SimConfig {
                    token: NGX_TOKEN.into(),
                    ..SimConfig::default()
                })
                .await
                .expect("NGX simulator starts"),
            ),
            Vendor::Synology => Sim::Dsm(
                array_operator::sim::dsm::start(DsmSimConfig::default())
                    .await
                    .expect("DSM simulator starts"),
            ),
        }
    }

    /// The vendor.
    pub fn vendor(&self) -> Vendor {
        match self {
            Sim::Ngx(_) => Vendor::NgxStorage,
            Sim::Dsm(_) => Vendor::Synology,
        }
    }

    /// How the operator reaches it.
    pub fn config(&self) -> BackendConfig {
        let (endpoint, ca, credentials, owner) = match self {
            Sim::Ngx(s) => (
                s.base_url(),
                s.ca_pem(),
                Credentials::Token(SecretString::new(NGX_TOKEN)),
                Some(s.owners()[0].clone()),
            ),
            Sim::Dsm(s) => (
                s.base_url(),
                s.ca_pem().map(str::to_string),
                Credentials::UserPassword {
                    username: DEFAULT_USERNAME.into(),
                    password: SecretString::new(DSM_PASSWORD),
                },
                None,
            ),
        };
        BackendConfig {
            vendor: self.vendor(),
            endpoint,
            secondary_endpoint: None,
            credentials,
            transport: TransportConfig {
                ca_bundle_pem: ca,
                insecure_skip_verify: false,
                request_timeout: Duration::from_secs(30),
                max_concurrent_requests: 4,
            },
            ngx_owner: owner,
            resize_mode: ResizeMode::Absolute,
            session_name: "chaos".into(),
        }
    }

    /// The fault plan.
    pub fn faults(&self) -> &Faults {
        match self {
            Sim::Ngx(s) => s.faults(),
            Sim::Dsm(s) => s.faults(),
        }
    }

    /// The call log.
    pub fn log(&self) -> &CallLog {
        match self {
            Sim::Ngx(s) => s.calls(),
            Sim::Dsm(s) => s.calls(),
        }
    }

    /// Every call so far.
    pub fn calls(&self) -> Vec<RecordedCall> {
        self.log().calls()
    }

    /// True when a call can change the array.
    pub fn is_mutating(&self, call: &RecordedCall) -> bool {
        match self {
            Sim::Ngx(_) => call.http_method != "GET",
            Sim::Dsm(_) => {
                let method = call.operation.rsplit('.').next().unwrap_or_default();
                let read = matches!(
                    method,
                    "list" | "get" | "query" | "login" | "logout" | "list_snapshot"
                );
                !read && !call.operation.starts_with("SYNO.API.")
            }
        }
    }

    /// The operations of the calls that can change the array, in order.
    pub fn mutating_calls(&self) -> Vec<String> {
        self.calls()
            .into_iter()
            .filter(|c| self.is_mutating(c))
            .map(|c| c.operation)
            .collect()
    }

    /// The operation key of a LUN create.
    pub fn lun_create_op(&self) -> String {
        match self {
            Sim::Ngx(s) => s.op(Endpoint::LunCreate),
            Sim::Dsm(_) => "SYNO.Core.ISCSI.LUN.create".into(),
        }
    }

    /// The operation keys of every call that changes the array.
    pub fn write_ops(&self) -> Vec<String> {
        match self {
            Sim::Ngx(s) => [
                Endpoint::LunCreate,
                Endpoint::LunDelete,
                Endpoint::LunModify,
                Endpoint::TargetCreate,
                Endpoint::TargetDelete,
                Endpoint::TargetRename,
                Endpoint::TargetAuthGroup,
                Endpoint::TargetAddLun,
                Endpoint::TargetRemoveLun,
                Endpoint::AuthGroupCreate,
                Endpoint::AuthGroupDelete,
                Endpoint::AuthGroupAddChap,
                Endpoint::AuthGroupDeleteChap,
            ]
            .into_iter()
            .map(|e| s.op(e))
            .collect(),
            Sim::Dsm(_) => [
                "SYNO.Core.ISCSI.LUN.create",
                "SYNO.Core.ISCSI.LUN.delete",
                "SYNO.Core.ISCSI.LUN.set",
                "SYNO.Core.ISCSI.LUN.map_target",
                "SYNO.Core.ISCSI.LUN.unmap_target",
                "SYNO.Core.ISCSI.Target.create",
                "SYNO.Core.ISCSI.Target.delete",
                "SYNO.Core.ISCSI.Target.set",
                "SYNO.Core.ISCSI.Target.map_lun",
                "SYNO.Core.ISCSI.Target.unmap_lun",
                "SYNO.Core.ISCSI.Target.enable",
                "SYNO.Core.ISCSI.Target.disable",
            ]
            .into_iter()
            .map(str::to_string)
            .collect(),
        }
    }

    /// The operation keys of the list calls an observation makes.
    pub fn read_ops(&self) -> Vec<String> {
        match self {
            Sim::Ngx(s) => [
                Endpoint::LunDetailList,
                Endpoint::LunList,
                Endpoint::TargetDetailList,
                Endpoint::TargetList,
                Endpoint::AuthGroupDetailList,
                Endpoint::AuthGroupList,
            ]
            .into_iter()
            .map(|e| s.op(e))
            .collect(),
            Sim::Dsm(_) => ["SYNO.Core.ISCSI.LUN.list", "SYNO.Core.ISCSI.Target.list"]
                .into_iter()
                .map(str::to_string)
                .collect(),
        }
    }

    /// The operation key of the step a multi-step target create takes after
    /// the target exists (NGX: its own auth group; DSM: `Target.set`).
    pub fn target_second_step_op(&self) -> String {
        match self {
            Sim::Ngx(s) => s.op(Endpoint::AuthGroupCreate),
            Sim::Dsm(_) => "SYNO.Core.ISCSI.Target.set".into(),
        }
    }

    /// An error code the vendor's client treats as a plain failure (no
    /// retry, no special meaning).
    pub fn plain_error_code(&self) -> i64 {
        match self {
            Sim::Ngx(_) => 9999,
            Sim::Dsm(_) => 100,
        }
    }

    /// The faults the chaos test draws from on this vendor.
    pub fn chaos_actions(&self) -> Vec<FaultAction> {
        let code = self.plain_error_code();
        let mut actions = vec![
            FaultAction::ErrorCode(code),
            FaultAction::ErrorCodeAfterApply(code),
            FaultAction::DropBeforeApply,
            FaultAction::DropAfterApply,
            FaultAction::HttpStatus(503),
            FaultAction::HttpStatus(500),
            FaultAction::HttpStatusAfterApply(502),
        ];
        if let Sim::Dsm(_) = self {
            actions.push(FaultAction::ExpireSession);
        }
        actions
    }

    /// Expires every session (DSM); NGX tokens do not expire.
    pub fn expire_sessions(&self) {
        if let Sim::Dsm(s) = self {
            s.state().expire_all_sessions();
        }
    }

    /// Every LUN on the array.
    pub fn luns(&self) -> Vec<ArrayLun> {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.luns()
                    .values()
                    .map(|l| ArrayLun {
                        id: l.id.clone(),
                        name: l.name.clone(),
                        fingerprint: format!("{l:?}"),
                    })
                    .collect()
            }),
            Sim::Dsm(s) => s
                .state()
                .luns()
                .into_iter()
                .map(|l| ArrayLun {
                    id: l.uuid.clone(),
                    name: l.name.clone(),
                    fingerprint: format!("{l:?}"),
                })
                .collect(),
        }
    }

    /// Every target on the array.
    pub fn targets(&self) -> Vec<ArrayTarget> {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.targets
                    .values()
                    .map(|t| ArrayTarget {
                        id: t.id.clone(),
                        name: t.name.clone(),
                        luns: t.luns.iter().map(|m| m.vol_id.clone()).collect(),
                        fingerprint: format!("{t:?}"),
                    })
                    .collect()
            }),
            Sim::Dsm(s) => s
                .state()
                .targets()
                .into_iter()
                .map(|t| ArrayTarget {
                    id: t.target_id.to_string(),
                    name: t.name.clone(),
                    luns: t.mapped.iter().map(|m| m.lun_uuid.clone()).collect(),
                    fingerprint: format!("{t:?}"),
                })
                .collect(),
        }
    }

    /// Names of the auth groups the operator made for targets (NGX only:
    /// `arrayop` plus the target id), with the target id they are for.
    pub fn own_auth_groups(&self) -> Vec<String> {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.auth_groups
                    .values()
                    .filter(|g| g.name.starts_with("arrayop"))
                    .map(|g| g.name.clone())
                    .collect()
            }),
            Sim::Dsm(_) => Vec::new(),
        }
    }

    /// Removes a LUN behind the operator's back.
    pub fn remove_lun_out_of_band(&self, id: &str) {
        let removed = match self {
            Sim::Ngx(s) => s.state().remove_lun(id).is_some(),
            Sim::Dsm(s) => s.state().remove_lun(id),
        };
        assert!(removed, "out-of-band removal of LUN {id}");
    }

    /// A LUN placement the array has (NGX pool, DSM volume).
    pub fn placement(&self) -> (Option<String>, Option<String>) {
        match self {
            Sim::Ngx(_) => (None, Some("pool1".into())),
            Sim::Dsm(_) => (Some("/volume1".into()), None),
        }
    }

    /// A LUN placement the array does not have, and the spec field naming it.
    pub fn missing_placement(&self) -> ((Option<String>, Option<String>), &'static str) {
        match self {
            Sim::Ngx(_) => ((None, Some("nopool9".into())), "spec.pool"),
            Sim::Dsm(_) => ((Some("/volume9".into()), None), "spec.location"),
        }
    }
}

impl Sim {
    /// True when the target named `name` carries what the second step of
    /// its create sets (NGX: its own auth group; DSM: the header digest).
    pub fn target_second_step_done(&self, name: &str) -> bool {
        match self {
            Sim::Ngx(s) => s.state().read(|st| {
                st.targets.values().any(|t| {
                    t.name == name
                        && st
                            .auth_groups
                            .get(&t.auth_group_id)
                            .is_some_and(|g| g.name.starts_with("arrayop"))
                })
            }),
            Sim::Dsm(s) => s
                .state()
                .targets()
                .iter()
                .any(|t| t.name == name && t.header_digest),
        }
    }

    /// How many LUNs carry this name.
    pub fn luns_named(&self, name: &str) -> usize {
        self.luns().iter().filter(|l| l.name == name).count()
    }

    /// How many targets carry this name.
    pub fn targets_named(&self, name: &str) -> usize {
        self.targets().iter().filter(|t| t.name == name).count()
    }

    /// The LUN with this id.
    pub fn lun(&self, id: &str) -> Option<ArrayLun> {
        self.luns().into_iter().find(|l| l.id == id)
    }
}

impl Sim {
    /// The DSM session ids open now (bearer credentials, like the
    /// password); NGX has none.
    pub fn session_ids(&self) -> Vec<String> {
        match self {
            Sim::Ngx(_) => Vec::new(),
            Sim::Dsm(s) => s.state().session_ids(),
        }
    }
}
