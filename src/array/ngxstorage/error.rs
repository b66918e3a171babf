//! The NGXStorage client's error type and the vendor code classes.

use crate::array::error::{ArrayError, ErrorClass};
use crate::array::transport::TransportSetupError;

use super::size::SizeError;
use super::validate::Violation;

/// Busy: the array refused before acting, so any call may be resent.
pub const CODE_BUSY: i64 = 725;
/// Not found codes (the SDK's errors.go). Unlike the SDK, a code-less 404
/// does not count: it is what a web server answers for a path the array
/// does not serve, so taking it as "already gone" would let a delete sent
/// to the wrong route "succeed" and leak the object.
pub const CODES_NOT_FOUND: [i64; 3] = [5011, 521, 611];
/// Already exists codes: 710, 522, 519 (auth group), 525 (iSCSI target).
pub const CODES_ALREADY_EXISTS: [i64; 4] = [710, 522, 519, 525];
/// The object is attached (a LUN mapped to a target).
pub const CODE_ATTACHED: i64 = 534;
/// Unauthorized; HTTP 401 counts too.
pub const CODE_UNAUTHORIZED: i64 = 5000;

/// The class of an array answer, from its code and HTTP status.
pub fn classify(code: Option<i64>, http_status: u16) -> ErrorClass {
    match code {
        Some(CODE_BUSY) => ErrorClass::Busy,
        Some(c) if CODES_NOT_FOUND.contains(&c) => ErrorClass::NotFound,
        Some(c) if CODES_ALREADY_EXISTS.contains(&c) => ErrorClass::AlreadyExists,
        Some(CODE_ATTACHED) => ErrorClass::InUse,
        Some(CODE_UNAUTHORIZED) => ErrorClass::Unauthorized,
        _ => match http_status {
            401 | 403 => ErrorClass::Unauthorized,
            400 | 422 => ErrorClass::InvalidRequest,
            507 => ErrorClass::LimitReached,
            _ => ErrorClass::Other,
        },
    }
}

fn on(object: &Option<String>) -> String {
    object
        .as_ref()
        .map(|o| format!(" (object {o})"))
        .unwrap_or_default()
}

/// Anything that went wrong talking to an NGXStorage array. Never carries
/// the bearer token or a CHAP password.
#[derive(Debug, thiserror::Error)]
pub enum NgxError {
    /// A value broke the document's tables; nothing was sent.
    #[error("{api_call}: refused before sending: {violation}")]
    Invalid {
        /// The call that was not made.
        api_call: String,
        /// The field and the rule.
        violation: Violation,
    },
    /// A size the API cannot express; nothing was sent.
    #[error("{api_call}: refused before sending: {source}")]
    Size {
        /// The call that was not made.
        api_call: String,
        /// Why.
        source: SizeError,
    },
    /// A spec value the client cannot use (for example the owner).
    #[error("StorageArray {field}: {problem}")]
    Config {
        /// The StorageArray field.
        field: &'static str,
        /// What is wrong.
        problem: String,
    },
    /// The array answered with an error envelope or an error status.
    #[error("{api_call}{}: array error{}: {message} (HTTP {http_status})", on(object), code.map(|c| format!(" {c}")).unwrap_or_default())]
    Api {
        /// The call.
        api_call: String,
        /// The id in the path, when the call addressed one object.
        object: Option<String>,
        /// HTTP status of the answer.
        http_status: u16,
        /// The `code` of the envelope, when there was one.
        code: Option<i64>,
        /// The `error` text of the envelope, or a description of the status.
        message: String,
    },
    /// The answer was empty or not JSON, whatever its status.
    #[error(
        "{api_call}{}: unusable answer (HTTP {http_status}): {detail}",
        on(object)
    )]
    BadResponse {
        /// The call.
        api_call: String,
        /// The id in the path, when the call addressed one object.
        object: Option<String>,
        /// HTTP status of the answer.
        http_status: u16,
        /// What was wrong with it.
        detail: String,
    },
    /// The answer was JSON but not the shape either dialect describes.
    #[error("{api_call}: unexpected answer: {detail}")]
    Decode {
        /// The call.
        api_call: String,
        /// What was missing or malformed.
        detail: String,
    },
    /// The answer was longer than the client reads.
    #[error(
        "{api_call}{}: answer larger than {limit} bytes (HTTP {http_status}); not read",
        on(object)
    )]
    TooLarge {
        /// The call.
        api_call: String,
        /// The id in the path, when the call addressed one object.
        object: Option<String>,
        /// HTTP status of the answer.
        http_status: u16,
        /// The limit, bytes.
        limit: usize,
    },
    /// The connection failed before the request was sent.
    #[error("{api_call}{}: array unreachable: {detail}", on(object))]
    Unreachable {
        /// The call.
        api_call: String,
        /// The id in the path, when the call addressed one object.
        object: Option<String>,
        /// The transport error.
        detail: String,
    },
    /// The connection broke after a mutating request may have reached the
    /// array. Its outcome is unknown; the caller must re-observe, and the
    /// client never resends it.
    #[error(
        "{api_call}{}: connection lost after sending; the outcome is unknown, re-observe before retrying: {detail}",
        on(object)
    )]
    Ambiguous {
        /// The call.
        api_call: String,
        /// The id in the path, when the call addressed one object.
        object: Option<String>,
        /// The transport error.
        detail: String,
    },
    /// No controller of the pair can be used.
    #[error("status/cluster: no usable controller: {detail}")]
    NoController {
        /// What each controller said.
        detail: String,
    },
    /// Neither dialect's iSCSI target path answered.
    #[error("dialect probe: {detail}")]
    UnknownDialect {
        /// What each probe got.
        detail: String,
    },
    /// After a resize the LUN does not have the size asked for. The client
    /// does not resize again: the mode is probably wrong for this array.
    #[error(
        "Lun {lun}: resize in {mode} mode asked for {expected} bytes but the array now reports {observed} bytes; check StorageArray.spec.ngxstorage.resizeMode"
    )]
    ResizeMismatch {
        /// The LUN id.
        lun: String,
        /// The mode used.
        mode: &'static str,
        /// The size asked for.
        expected: u64,
        /// The size read back.
        observed: u64,
    },
    /// A LUN may only grow.
    #[error("Lun {lun}: size may only grow ({current} bytes now, {requested} asked)")]
    Shrink {
        /// The LUN id.
        lun: String,
        /// Its current size.
        current: u64,
        /// The size asked for.
        requested: u64,
    },
    /// The transport could not be configured.
    #[error(transparent)]
    Setup(#[from] TransportSetupError),
}

impl NgxError {
    /// The HTTP status of an array answer, when there was one.
    pub fn http_status(&self) -> Option<u16> {
        match self {
            NgxError::Api { http_status, .. }
            | NgxError::BadResponse { http_status, .. }
            | NgxError::TooLarge { http_status, .. } => Some(*http_status),
            _ => None,
        }
    }

    /// Whether this is a not-found answer.
    pub fn is_not_found(&self) -> bool {
        self.class() == ErrorClass::NotFound
    }

    /// Whether this is an already-exists answer.
    pub fn is_already_exists(&self) -> bool {
        self.class() == ErrorClass::AlreadyExists
    }
}

impl ArrayError for NgxError {
    fn class(&self) -> ErrorClass {
        match self {
            NgxError::Invalid { .. } | NgxError::Size { .. } | NgxError::Config { .. } => {
                ErrorClass::InvalidRequest
            }
            NgxError::Shrink { .. } => ErrorClass::InvalidRequest,
            NgxError::Api {
                code, http_status, ..
            } => classify(*code, *http_status),
            NgxError::Unreachable { .. }
            | NgxError::Ambiguous { .. }
            | NgxError::NoController { .. } => ErrorClass::Unreachable,
            NgxError::UnknownDialect { .. } => ErrorClass::Unsupported,
            NgxError::BadResponse { .. }
            | NgxError::TooLarge { .. }
            | NgxError::Decode { .. }
            | NgxError::ResizeMismatch { .. }
            | NgxError::Setup(_) => ErrorClass::Other,
        }
    }

    fn vendor_code(&self) -> Option<i64> {
        match self {
            NgxError::Api { code, .. } => *code,
            _ => None,
        }
    }

    fn api_call(&self) -> &str {
        match self {
            NgxError::Invalid { api_call, .. }
            | NgxError::Size { api_call, .. }
            | NgxError::Api { api_call, .. }
            | NgxError::BadResponse { api_call, .. }
            | NgxError::TooLarge { api_call, .. }
            | NgxError::Decode { api_call, .. }
            | NgxError::Unreachable { api_call, .. }
            | NgxError::Ambiguous { api_call, .. } => api_call,
            NgxError::NoController { .. } => "GET /status/cluster",
            NgxError::UnknownDialect { .. } => "GET /target/iscsi/list",
            NgxError::ResizeMismatch { .. } | NgxError::Shrink { .. } => "PATCH /lun/{id}",
            NgxError::Config { .. } | NgxError::Setup(_) => "",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_map_to_the_sdk_classes() {
        assert_eq!(classify(Some(725), 200), ErrorClass::Busy);
        for c in [5011, 521, 611] {
            assert_eq!(classify(Some(c), 400), ErrorClass::NotFound);
        }
        assert_eq!(classify(None, 404), ErrorClass::Other);
        for c in [710, 522, 519, 525] {
            assert_eq!(classify(Some(c), 409), ErrorClass::AlreadyExists);
        }
        assert_eq!(classify(Some(534), 400), ErrorClass::InUse);
        assert_eq!(classify(Some(5000), 500), ErrorClass::Unauthorized);
        assert_eq!(classify(None, 401), ErrorClass::Unauthorized);
        assert_eq!(classify(Some(1), 500), ErrorClass::Other);
    }
}
