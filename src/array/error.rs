//! What the reconcile engine needs to know about any array error, whichever
//! vendor raised it.

/// The class of an array error. The engine decides on the class (retry, treat
/// as success, report a condition); the vendor error keeps the details.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The object does not exist. Success for delete and unmap.
    NotFound,
    /// An object with that name or mapping already exists.
    AlreadyExists,
    /// The object is in use (mapped, attached, running) and cannot be changed.
    InUse,
    /// The array is busy and refused before acting: safe to retry any call.
    Busy,
    /// Credentials were refused.
    Unauthorized,
    /// The session expired; the client re-authenticates by itself, so the
    /// engine sees this only when re-authentication also failed.
    SessionExpired,
    /// The request was malformed or broke a documented rule.
    InvalidRequest,
    /// A capacity or count limit of the array was reached.
    LimitReached,
    /// The array could not be reached, or the connection broke. For a
    /// mutating call the outcome is unknown: re-observe, never resend.
    Unreachable,
    /// The array does not offer this operation.
    Unsupported,
    /// Anything else the array reported.
    Other,
}

impl ErrorClass {
    /// A short CamelCase name, used as an Event reason and a metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::NotFound => "NotFound",
            ErrorClass::AlreadyExists => "AlreadyExists",
            ErrorClass::InUse => "InUse",
            ErrorClass::Busy => "Busy",
            ErrorClass::Unauthorized => "Unauthorized",
            ErrorClass::SessionExpired => "SessionExpired",
            ErrorClass::InvalidRequest => "InvalidRequest",
            ErrorClass::LimitReached => "LimitReached",
            ErrorClass::Unreachable => "Unreachable",
            ErrorClass::Unsupported => "Unsupported",
            ErrorClass::Other => "Other",
        }
    }
}

/// Implemented by each vendor client's error type.
pub trait ArrayError: std::error::Error + Send + Sync + 'static {
    /// The class the engine acts on.
    fn class(&self) -> ErrorClass;
    /// The vendor's own error code, when the array sent one.
    fn vendor_code(&self) -> Option<i64>;
    /// The API call it came from, for example `SYNO.Core.ISCSI.LUN.create` or
    /// `POST /lun/create`.
    fn api_call(&self) -> &str;
}
