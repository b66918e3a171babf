//! A difference between the spec and the array, as the diff reports it.

use std::fmt;

/// One field that differs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Drift {
    /// The spec field, as `kubectl explain` names it (`spec.size`).
    pub field: String,
    /// What the spec asks for.
    pub desired: String,
    /// What the array has.
    pub observed: String,
    /// True when an API call can correct it; false when only a human can
    /// (the condition is then `Ready=False, reason Drifted`).
    pub correctable: bool,
    /// Why it cannot be corrected, when it cannot.
    pub rule: Option<&'static str>,
}

impl Drift {
    /// A difference an API call corrects.
    pub fn correctable(
        field: impl Into<String>,
        desired: impl fmt::Display,
        observed: impl fmt::Display,
    ) -> Self {
        Drift {
            field: field.into(),
            desired: desired.to_string(),
            observed: observed.to_string(),
            correctable: true,
            rule: None,
        }
    }

    /// A difference no API call can correct, with the rule that forbids it.
    pub fn fixed(
        field: impl Into<String>,
        desired: impl fmt::Display,
        observed: impl fmt::Display,
        rule: &'static str,
    ) -> Self {
        Drift {
            field: field.into(),
            desired: desired.to_string(),
            observed: observed.to_string(),
            correctable: false,
            rule: Some(rule),
        }
    }
}

impl fmt::Display for Drift {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: spec wants {:?}, array has {:?}",
            self.field, self.desired, self.observed
        )?;
        if let Some(rule) = self.rule {
            write!(f, " ({rule})")?;
        }
        Ok(())
    }
}
