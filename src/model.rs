//! Vendor-neutral views of array objects: what the reconcile core compares
//! the spec against. Each vendor client's observation is converted into
//! these, so the diff never knows which array it is looking at.

use std::collections::BTreeMap;
use std::fmt;

/// Where a LUN lives: a DSM volume or an NGX pool.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Placement {
    /// Synology volume path (`/volume1`).
    Volume(String),
    /// NGXStorage pool name.
    Pool(String),
}

impl fmt::Display for Placement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Placement::Volume(v) => write!(f, "volume {v}"),
            Placement::Pool(p) => write!(f, "pool {p}"),
        }
    }
}

/// Vendor settings of a LUN, keyed by their spec path (for example
/// `synology.emulateCaw` or `ngxstorage.compression`), values in their spec
/// spelling (`true`, `64k`, `32`). Keying by spec path lets a drift message
/// name the field without a translation table.
pub type LunSettings = BTreeMap<String, String>;

/// A LUN as observed on an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedLun {
    /// Array-side id (DSM uuid, NGX vol_id).
    pub id: String,
    /// Array-side name.
    pub name: String,
    /// Provisioned size.
    pub size_bytes: u64,
    /// Allocated bytes, where reported.
    pub allocated_bytes: Option<u64>,
    /// Array type word (`BLUN`, `BLUN_THICK`, `thin`, ...).
    pub lun_type: Option<String>,
    /// Where it lives.
    pub placement: Option<Placement>,
    /// Thin provisioned, where it can be told.
    pub thin: Option<bool>,
    /// Description, where the array stores one.
    pub description: Option<String>,
    /// Vendor settings as observed.
    pub settings: LunSettings,
    /// Array-side ids of the targets it is mapped to.
    pub mapped_targets: Vec<String>,
    /// The array's own status word.
    pub status: Option<String>,
}

/// A secret string (CHAP password). Never printed: Debug and Display redact.
#[derive(Clone, PartialEq, Eq, Default)]
pub struct SecretString(String);

impl SecretString {
    /// Wraps a secret.
    pub fn new(value: impl Into<String>) -> Self {
        SecretString(value.into())
    }

    /// The secret itself, for the one place that sends it to the array.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

impl fmt::Display for SecretString {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// One CHAP credential pair.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ChapCredential {
    /// CHAP user name.
    pub username: String,
    /// CHAP secret.
    pub password: SecretString,
}

/// CHAP as configured on a target.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct Chap {
    /// What initiators present.
    pub initiator: ChapCredential,
    /// What the target presents back (mutual CHAP).
    pub mutual: Option<ChapCredential>,
}

/// CHAP as an array reports it: user names always, passwords only where the
/// API returns them.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ObservedChap {
    /// Initiator CHAP user name.
    pub username: String,
    /// Initiator CHAP secret, when the API returns it.
    pub password: Option<SecretString>,
    /// Mutual CHAP user name.
    pub mutual_username: Option<String>,
    /// Mutual CHAP secret, when the API returns it.
    pub mutual_password: Option<SecretString>,
}

/// Target settings that are plain values, keyed by spec field
/// (`maxSessions`, `headerDigest`, `dataDigest`, `maxRecvSegBytes`,
/// `maxSendSegBytes`, `portalGroup`).
pub type TargetSettings = BTreeMap<String, String>;

/// An iSCSI target as observed on an array.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObservedTarget {
    /// Array-side id.
    pub id: String,
    /// Array-side name.
    pub name: String,
    /// IQN.
    pub iqn: String,
    /// Accepting logins.
    pub enabled: bool,
    /// Plain settings as observed.
    pub settings: TargetSettings,
    /// CHAP, when enabled.
    pub chap: Option<ObservedChap>,
    /// Allowed initiator IQNs (empty: any).
    pub initiators: Vec<String>,
    /// Mapped LUN ids, in LUN-number order.
    pub mapped_luns: Vec<String>,
    /// Sessions logged in.
    pub connected_sessions: Option<u32>,
    /// The array's own status word.
    pub status: Option<String>,
}
