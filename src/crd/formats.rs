//! Schema rules that restate a field's OpenAPI `pattern` as a sentence.
//!
//! The apiserver words a pattern failure as `spec.iqn in body should match
//! '<regular expression>'`, which names the field but not the rule in words
//! a user can act on. Each rule here runs the same expression in CEL (the
//! apiserver runs CEL rules beside a pattern failure) with a message naming
//! the field and saying what it takes. The pattern stays: `kubectl explain`
//! shows it, and it is checked without CEL cost.

use kube::core::Rule;

use super::shared::{CRON_PATTERN, DURATION_PATTERN, IQN_PATTERN, SIZE_PATTERN, TIME_ZONE_PATTERN};

/// Pattern of an array API endpoint: an `https://` URL.
pub const HTTPS_URL_PATTERN: &str = r"^https://[^\s/?#]+(/[^\s?#]*)?$";

/// `self.matches(<pattern>)` as a CEL raw string, so the backslashes of the
/// expression reach the regular expression unchanged.
fn matches(subject: &str, pattern: &str) -> String {
    format!("{subject}.matches(r'{pattern}')")
}

fn rule(pattern: &str, message: String) -> Rule {
    Rule::new(matches("self", pattern)).message(kube::core::Message::Message(message))
}

/// What an iSCSI name looks like, for messages.
const IQN_WORDS: &str = "an iSCSI qualified name in lower case, iqn.YYYY-MM.reversed.domain with an optional :identifier (iqn.2000-01.com.synology:dsm1.t1), or eui. and 16 upper-case hexadecimal digits";

/// `field` (a string) is an iSCSI qualified name or an EUI-64.
pub fn iqn(field: &str) -> Rule {
    rule(IQN_PATTERN, format!("{field} must be {IQN_WORDS}"))
}

/// Every entry of `field` (a list of strings) is an iSCSI qualified name or
/// an EUI-64.
pub fn iqn_list(field: &str) -> Rule {
    Rule::new(format!("self.all(i, {})", matches("i", IQN_PATTERN))).message(
        kube::core::Message::Message(format!("each entry of {field} must be {IQN_WORDS}")),
    )
}

/// `field` is a duration.
pub fn duration(field: &str) -> Rule {
    rule(
        DURATION_PATTERN,
        format!("{field} must be a duration in ms, s, m or h, such as 30s, 5m or 1h30m"),
    )
}

/// `field` is five cron fields or a named shortcut.
pub fn cron_shape(field: &str) -> Rule {
    rule(
        CRON_PATTERN,
        format!(
            "{field} must be five cron fields separated by single spaces (minute hour day-of-month month day-of-week), or @hourly, @daily or @weekly"
        ),
    )
}

/// `field` is an IANA time zone name.
pub fn time_zone(field: &str) -> Rule {
    rule(
        TIME_ZONE_PATTERN,
        format!("{field} must be an IANA time zone name such as UTC or Europe/Istanbul"),
    )
}

/// `field` is an `https://` URL.
pub fn https_url(field: &str) -> Rule {
    rule(
        HTTPS_URL_PATTERN,
        format!(
            "{field} must be an https:// URL of the array's API, such as https://dsm.example.com:5001"
        ),
    )
}

/// `self.<member>` is a byte size, as a rule on the object holding it (the
/// member's own schema is written by `schema_with`); `optional` when the
/// member may be unset. `field` names it in the message.
pub fn size_member(member: &str, field: &str, optional: bool) -> Rule {
    let test = matches(&format!("self.{member}"), SIZE_PATTERN);
    let expression = if optional {
        format!("!has(self.{member}) || {test}")
    } else {
        test
    };
    Rule::new(expression)
        .message(kube::core::Message::Message(size_message(field)))
        .field_path(format!(".{member}"))
}

fn size_message(field: &str) -> String {
    format!(
        "{field} must be a whole number of bytes with an optional suffix Ki, Mi, Gi, Ti, Pi, Ei, k, M, G, T, P or E (10Gi, 500G): no fraction and no m"
    )
}

/// `field` matches `pattern`, which `words` describe (for the fields whose
/// pattern is their own).
pub fn pattern(field: &str, pattern: &str, words: &str) -> Rule {
    rule(pattern, format!("{field} must be {words}"))
}

/// `self.<member>` (a byte size; `optional` when it may be unset) is a
/// whole number of MiB, a vendor limit (NGXStorage LUNs, VMM memory and
/// disks). `when` guards the rule (`""` for always); `field` and `why`
/// word the message.
pub fn whole_mib_member(member: &str, optional: bool, when: &str, field: &str, why: &str) -> Rule {
    let q = format!("quantity(self.{member})");
    let mut test = format!("({q}.isInteger() && {q}.asInteger() % 1048576 == 0)");
    if optional {
        test = format!("!has(self.{member}) || {test}");
    }
    if !when.is_empty() {
        test = format!("!({when}) || {test}");
    }
    Rule::new(test)
        .message(kube::core::Message::Message(format!(
            "{field} must be a whole number of MiB: {why}"
        )))
        .field_path(format!(".{member}"))
}
