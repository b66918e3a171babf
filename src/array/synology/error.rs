//! DSM errors: every code a DSM (or the simulator) sends, mapped to a message
//! and an [`ErrorClass`], plus the client's own transport and decode failures.
//!
//! DSM reuses numbers across API families (401 is "bad parameter" for the
//! Virtual Machine Manager but "account disabled" for `SYNO.API.Auth`), so the
//! lookup takes the API name as well as the code.

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::transport::TransportSetupError;

/// iSCSI: a LUN with that name already exists.
pub const LUN_NAME_TAKEN: i64 = 18990538;
/// iSCSI: a target with that name already exists.
pub const TARGET_NAME_TAKEN: i64 = 18990744;
/// iSCSI: no LUN has that uuid.
pub const NO_SUCH_LUN: i64 = 18990531;
/// iSCSI: no snapshot has that uuid.
pub const NO_SUCH_SNAPSHOT: i64 = 18990532;
/// iSCSI: the volume has no room for the LUN.
pub const OUT_OF_SPACE: i64 = 18990002;
/// iSCSI: the number of LUNs reached the system limit.
pub const LUN_LIMIT: i64 = 18990541;
/// iSCSI: the number of targets reached the system limit.
pub const TARGET_LIMIT: i64 = 18990542;
/// iSCSI: the number of snapshots of one LUN reached the system limit.
pub const SNAPSHOT_LIMIT: i64 = 18990543;
/// iSCSI: the LUN is busy (still mapped to a target). The simulator uses this
/// code; it is inferred, not confirmed against a DSM.
pub const LUN_BUSY: i64 = 18990539;
/// iSCSI: a snapshot could not be deleted (the docs show it per snapshot uuid
/// in a `delete_snapshot` answer).
pub const SNAPSHOT_DELETE_FAILED: i64 = 18990540;
/// iSCSI: no target has that id. The simulator uses this code; it is
/// inferred, not confirmed against a DSM.
pub const NO_SUCH_TARGET: i64 = 18990710;

/// The session codes after which the client logs in again and retries once.
pub const SESSION_CODES: [i64; 4] = [105, 106, 107, 119];

/// A failed DSM call.
#[derive(Debug, thiserror::Error)]
pub enum DsmError {
    /// The DSM answered `success: false` with an error code.
    #[error("{api_call} ({subject}): DSM error {code}: {message}")]
    Api {
        /// `API.method`, for example `SYNO.Core.ISCSI.LUN.create`.
        api_call: String,
        /// What the call was about, for example `LUN "pvc-1"`.
        subject: String,
        /// The DSM error code, kept even when it is not in the table.
        code: i64,
        /// The documented meaning of the code.
        message: String,
    },
    /// The request did not complete (connect, TLS, timeout, dropped
    /// connection). For a mutating call the outcome is unknown.
    #[error("{api_call} ({subject}): the DSM could not be reached or the connection broke{}: {detail}", if *outcome_unknown { " (the change may or may not have been applied)" } else { "" })]
    Transport {
        /// `API.method`.
        api_call: String,
        /// What the call was about.
        subject: String,
        /// What went wrong.
        detail: String,
        /// True when a mutating call may have been applied.
        outcome_unknown: bool,
    },
    /// The DSM answered with an HTTP error status.
    #[error("{api_call} ({subject}): HTTP status {status}")]
    HttpStatus {
        /// `API.method`.
        api_call: String,
        /// What the call was about.
        subject: String,
        /// The status code.
        status: u16,
        /// True when a mutating call may have been applied.
        outcome_unknown: bool,
    },
    /// The answer was not the JSON the API documents.
    #[error("{api_call} ({subject}): unexpected answer: {detail}")]
    Decode {
        /// `API.method`.
        api_call: String,
        /// What the call was about.
        subject: String,
        /// The serde error or a description of the shape.
        detail: String,
    },
    /// The answer was longer than the client reads.
    #[error("{api_call} ({subject}): answer larger than {limit} bytes; not read")]
    TooLarge {
        /// `API.method`.
        api_call: String,
        /// What the call was about.
        subject: String,
        /// The limit, bytes.
        limit: usize,
    },
    /// The DSM does not offer the API at a version this client speaks.
    #[error("{api_call}: the DSM does not offer this API: {detail}")]
    Unsupported {
        /// `API.method`.
        api_call: String,
        /// Which API or version is missing.
        detail: String,
    },
    /// The request was refused by the client before it was sent.
    #[error("{api_call} ({subject}): {detail}")]
    InvalidRequest {
        /// `API.method`.
        api_call: String,
        /// What the call was about.
        subject: String,
        /// The field and the rule it broke.
        detail: String,
    },
    /// The transport could not be built (CA bundle, TLS settings).
    #[error("DSM client setup: {0}")]
    Setup(#[from] TransportSetupError),
}

impl DsmError {
    /// The DSM error code, for [`DsmError::Api`].
    pub fn code(&self) -> Option<i64> {
        match self {
            DsmError::Api { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// True when a mutating call may have been applied although it failed:
    /// the caller must look before it acts again.
    pub fn outcome_unknown(&self) -> bool {
        match self {
            DsmError::Transport {
                outcome_unknown, ..
            }
            | DsmError::HttpStatus {
                outcome_unknown, ..
            } => *outcome_unknown,
            _ => false,
        }
    }

    /// True for the session-expiry codes the client recovers from by itself.
    pub fn is_session_error(&self) -> bool {
        self.code().is_some_and(|c| SESSION_CODES.contains(&c))
    }
}

impl ArrayError for DsmError {
    fn class(&self) -> ErrorClass {
        match self {
            DsmError::Api { api_call, code, .. } => classify(api_of(api_call), *code),
            DsmError::Transport { .. } => ErrorClass::Unreachable,
            DsmError::HttpStatus { status, .. } if *status >= 500 => ErrorClass::Unreachable,
            DsmError::HttpStatus { .. } => ErrorClass::Other,
            DsmError::Decode { .. } | DsmError::TooLarge { .. } => ErrorClass::Other,
            DsmError::Unsupported { .. } => ErrorClass::Unsupported,
            DsmError::InvalidRequest { .. } => ErrorClass::InvalidRequest,
            DsmError::Setup(_) => ErrorClass::InvalidRequest,
        }
    }

    fn vendor_code(&self) -> Option<i64> {
        self.code()
    }

    fn api_call(&self) -> &str {
        match self {
            DsmError::Api { api_call, .. }
            | DsmError::Transport { api_call, .. }
            | DsmError::HttpStatus { api_call, .. }
            | DsmError::Decode { api_call, .. }
            | DsmError::TooLarge { api_call, .. }
            | DsmError::Unsupported { api_call, .. }
            | DsmError::InvalidRequest { api_call, .. } => api_call,
            DsmError::Setup(_) => "",
        }
    }
}

/// `SYNO.Core.ISCSI.LUN.create` → `SYNO.Core.ISCSI.LUN`.
fn api_of(api_call: &str) -> &str {
    api_call.rsplit_once('.').map_or(api_call, |(api, _)| api)
}

fn is_vmm(api: &str) -> bool {
    api.starts_with("SYNO.Virtualization.")
}

fn is_auth(api: &str) -> bool {
    api == "SYNO.API.Auth"
}

/// The documented meaning of `code` for `api`, or `None` for a code the
/// client does not know.
pub fn describe(api: &str, code: i64) -> Option<&'static str> {
    if is_auth(api) {
        let auth = match code {
            400 => Some("no such account or incorrect password"),
            401 => Some("account disabled"),
            402 => Some("permission denied"),
            403 => Some("2-step verification code required"),
            404 => Some("failed to authenticate 2-step verification code"),
            _ => None,
        };
        if auth.is_some() {
            return auth;
        }
    }
    if is_vmm(api) {
        let vmm = match code {
            401 => Some("bad parameter"),
            402 => Some("operation failed"),
            403 => Some("name conflict"),
            404 => Some("the number of iSCSI LUNs has reached the system limit (vdisks are LUNs)"),
            500 => Some("the cluster is frozen: more than half of the hosts are offline"),
            501 => Some("the cluster is in incompatible mode; upgrade DSM"),
            600 => Some("the cluster is not ready"),
            601 => Some("the host is offline"),
            700 => Some("the storage is invalid"),
            900 => Some("failed to set a host to the virtual machine"),
            901 => Some("the virtual machine does not have a host"),
            902 => Some("cannot power on: not enough CPU threads"),
            903 => Some("cannot power on: not enough memory"),
            904 => Some("the virtual machine is running (online)"),
            905 => Some("MAC address conflict"),
            906 => Some("cannot create the virtual machine: the selected image was not found"),
            907 => Some("the virtual machine is not running (offline)"),
            908 => Some("cannot power on: not enough CPU threads for the reservation on the host"),
            909 => Some("cannot power on: the host has no matching network"),
            910 => Some("only the VirtIO disk controller can boot the virtual machine remotely"),
            911 => Some("virtual machines with UEFI cannot be powered on remotely"),
            1000 => Some("cannot find task_id"),
            1001 => Some("needs Virtual Machine Manager Pro"),
            1400 => Some("image creation only partly succeeded"),
            1600 => Some(
                "the virtual machine was edited, but reserving memory or CPU on the HA hosts failed",
            ),
            _ => None,
        };
        if vmm.is_some() {
            return vmm;
        }
    }
    match code {
        100 => Some("unknown error"),
        101 => Some("no parameter of API, method or version"),
        102 => Some("the requested API does not exist"),
        103 => Some("the requested method does not exist"),
        104 => Some("the requested version does not support the function"),
        105 => Some("the login session does not have permission"),
        106 => Some("session timeout"),
        107 => Some("session interrupted by duplicated login"),
        114 => Some("a required parameter is missing"),
        119 => Some("invalid session / SID not found"),
        120 => Some("invalid parameter"),
        OUT_OF_SPACE => Some("not enough free space on the volume"),
        NO_SUCH_LUN => Some("no such LUN"),
        NO_SUCH_SNAPSHOT => Some("no such snapshot"),
        LUN_NAME_TAKEN => Some("a LUN with this name already exists"),
        LUN_BUSY => Some("the LUN is in use (still mapped to a target)"),
        SNAPSHOT_DELETE_FAILED => Some("the snapshot could not be deleted"),
        LUN_LIMIT => Some("the number of LUNs has reached the system limit"),
        TARGET_LIMIT => Some("the number of targets has reached the system limit"),
        SNAPSHOT_LIMIT => Some("the number of snapshots of this LUN has reached the system limit"),
        NO_SUCH_TARGET => Some("no such target"),
        TARGET_NAME_TAKEN => Some("a target with this name already exists"),
        _ => None,
    }
}

/// The message for `code`, with unknown codes named as such.
pub fn message_for(api: &str, code: i64) -> String {
    describe(api, code)
        .map(str::to_string)
        .unwrap_or_else(|| format!("unknown DSM error code {code}"))
}

/// The class the reconcile engine acts on.
pub fn classify(api: &str, code: i64) -> ErrorClass {
    if is_auth(api) && (400..=404).contains(&code) {
        return ErrorClass::Unauthorized;
    }
    if is_vmm(api) {
        match code {
            401 | 700 | 907 | 909 => return ErrorClass::InvalidRequest,
            403 | 905 => return ErrorClass::AlreadyExists,
            404 | 902 | 903 | 908 => return ErrorClass::LimitReached,
            500 | 501 | 600 | 601 => return ErrorClass::Busy,
            904 => return ErrorClass::InUse,
            906 | 1000 => return ErrorClass::NotFound,
            910 | 911 | 1001 => return ErrorClass::Unsupported,
            402 | 900 | 901 | 1400 | 1600 => return ErrorClass::Other,
            _ => {}
        }
    }
    match code {
        101 | 114 | 120 => ErrorClass::InvalidRequest,
        102..=104 => ErrorClass::Unsupported,
        105..=107 | 119 => ErrorClass::SessionExpired,
        NO_SUCH_LUN | NO_SUCH_SNAPSHOT | NO_SUCH_TARGET => ErrorClass::NotFound,
        LUN_NAME_TAKEN | TARGET_NAME_TAKEN => ErrorClass::AlreadyExists,
        OUT_OF_SPACE | LUN_LIMIT | TARGET_LIMIT | SNAPSHOT_LIMIT => ErrorClass::LimitReached,
        LUN_BUSY | SNAPSHOT_DELETE_FAILED => ErrorClass::InUse,
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_depend_on_the_api_family() {
        assert_eq!(
            classify("SYNO.API.Auth", 400),
            ErrorClass::Unauthorized,
            "auth 400"
        );
        assert_eq!(
            classify("SYNO.Virtualization.API.Guest", 403),
            ErrorClass::AlreadyExists
        );
        assert_eq!(
            describe("SYNO.Virtualization.API.Guest", 401),
            Some("bad parameter")
        );
        assert_eq!(describe("SYNO.API.Auth", 401), Some("account disabled"));
        assert_eq!(
            classify("SYNO.Core.ISCSI.LUN", LUN_NAME_TAKEN),
            ErrorClass::AlreadyExists
        );
    }

    #[test]
    fn unknown_code_keeps_its_number() {
        let err = DsmError::Api {
            api_call: "SYNO.Core.ISCSI.LUN.create".into(),
            subject: "LUN \"a\"".into(),
            code: 18990999,
            message: message_for("SYNO.Core.ISCSI.LUN", 18990999),
        };
        assert_eq!(err.vendor_code(), Some(18990999));
        assert_eq!(err.class(), ErrorClass::Other);
        assert!(err.to_string().contains("18990999"));
        assert_eq!(err.api_call(), "SYNO.Core.ISCSI.LUN.create");
    }
}
