//! A spec the schema accepted but the array cannot take: reported as
//! `Synced=False, reason InvalidSpec`, naming the field and the rule, and
//! never sent to the array.

use std::fmt;

/// One broken rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InvalidSpec {
    /// The field, as `kubectl explain` names it (`spec.pool`).
    pub field: String,
    /// The rule it breaks.
    pub rule: String,
    /// True when the field is valid but the array's vendor cannot serve it
    /// (reported with reason `Unsupported` rather than `InvalidSpec`).
    pub unsupported: bool,
}

impl InvalidSpec {
    /// A broken rule on `field`.
    pub fn new(field: impl Into<String>, rule: impl Into<String>) -> Self {
        InvalidSpec {
            field: field.into(),
            rule: rule.into(),
            unsupported: false,
        }
    }

    /// A field the array's vendor cannot serve.
    pub fn unsupported(field: impl Into<String>, rule: impl Into<String>) -> Self {
        InvalidSpec {
            unsupported: true,
            ..InvalidSpec::new(field, rule)
        }
    }

    /// The `Synced` reason to report.
    pub fn reason(&self) -> &'static str {
        if self.unsupported {
            crate::crd::shared::synced_reason::UNSUPPORTED
        } else {
            crate::crd::shared::synced_reason::INVALID_SPEC
        }
    }
}

impl fmt::Display for InvalidSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.rule)
    }
}
