//! Login state: the credentials, the current sid, and the generation counter
//! that makes re-login single-flight.

use std::sync::atomic::{AtomicU64, Ordering};

/// DSM account credentials. `Debug` never shows the password.
#[derive(Clone)]
pub struct Credentials {
    /// The DSM account name.
    pub username: String,
    /// The DSM account password.
    pub password: String,
}

impl Credentials {
    /// Credentials for `username` / `password`.
    pub fn new(username: impl Into<String>, password: impl Into<String>) -> Self {
        Credentials {
            username: username.into(),
            password: password.into(),
        }
    }
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .finish()
    }
}

/// A session id. `Debug` and `Display` never show it: a sid is as good as the
/// password until it expires.
#[derive(Clone, PartialEq, Eq)]
pub struct Sid(String);

impl Sid {
    /// Wraps a sid received from the DSM.
    pub fn new(sid: String) -> Self {
        Sid(sid)
    }

    /// The value to send as `_sid`.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Sid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sid(<redacted>)")
    }
}

/// The current login. Guarded by an async mutex held across a login, so
/// concurrent callers that find no sid wait for the one login in flight
/// instead of each starting their own.
#[derive(Debug, Default)]
pub(crate) struct SessionState {
    /// The sid, when logged in.
    pub sid: Option<Sid>,
    /// Bumped by every login. A caller that saw an expired sid re-logs in only
    /// when the generation is still the one it used; otherwise another caller
    /// already did.
    pub generation: u64,
}

/// How many logins this client has made (for tests and metrics).
#[derive(Debug, Default)]
pub(crate) struct LoginCounter(AtomicU64);

impl LoginCounter {
    pub fn bump(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    pub fn get(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

/// A session name unique to one operator install, so the operator's session
/// never collides with (or logs out) an admin's browser session. DSM
/// accepts letters, digits, `_` and `-` here.
pub fn session_name_for(install_id: &str) -> String {
    let clean: String = install_id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("array-operator-{clean}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_redacts_secrets() {
        let c = Credentials::new("admin", "s3cr3t-pass");
        let s = Sid::new("sid-value-123".into());
        let text = format!("{c:?} {s:?}");
        assert!(!text.contains("s3cr3t-pass"), "{text}");
        assert!(!text.contains("sid-value-123"), "{text}");
        assert!(text.contains("admin"));
    }

    #[test]
    fn session_name_is_sanitized() {
        assert_eq!(session_name_for("ns/op 1"), "array-operator-ns-op-1");
    }
}
