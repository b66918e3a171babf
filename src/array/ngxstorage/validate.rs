//! The document's validation tables, in one place.
//!
//! The client checks every path id and body against these rules before it
//! sends anything, and the simulator refuses what they reject with a message
//! naming the field, so the two can never disagree. Rules come from the
//! "Details" column of `ngxstorage-rest-api-v2.4.1.txt`.

use std::fmt;

use serde_json::Value;

use super::dialect::{Dialect, Endpoint, Field};

/// One rule from the document's tables.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// LUN and target names: 1-30 letters, numbers, underscores or hyphens.
    ObjectName,
    /// Pool names: 1-20 letters or numbers.
    PoolName,
    /// Auth group names: 1-30 letters or numbers.
    GroupName,
    /// Owners (controller ids): 1-20 letters, numbers, underscores or hyphens.
    Owner,
    /// Snapshot and clone names: 1-999 letters, numbers, underscores or hyphens.
    SnapshotName,
    /// Ids: 1-40 hexadecimal characters.
    HexId,
    /// A non-empty array of ids, each 1-40 hexadecimal characters.
    HexIdList,
    /// Pool ids in paths: 1-40 characters.
    PoolId,
    /// `on` or `off`.
    OnOff,
    /// One of 4k, 8k, 16k, 32k, 64k, 128k.
    Blocksize,
    /// `transactional` or `sequential`.
    IoType,
    /// One of 4, 8, 16, 32, 64, 128.
    QosPriority,
    /// The size unit: M, G or T.
    SizeUnit,
    /// An integer, 1 or greater.
    PositiveInt,
    /// An integer from 1 to 512.
    KeepMax,
    /// A five-field cron expression of numbers, `*`, `,` and `-`.
    Cron,
    /// A non-empty string (the document gives no other rule).
    NonEmpty,
    /// A non-empty secret string; its value is never echoed.
    Secret,
}

impl Rule {
    /// The rule in words, as it appears in error messages.
    pub fn describe(self) -> &'static str {
        match self {
            Rule::ObjectName => "1-30 letters, numbers, underscores or hyphens",
            Rule::PoolName => "1-20 letters or numbers",
            Rule::GroupName => "1-30 letters or numbers",
            Rule::Owner => "1-20 letters, numbers, underscores or hyphens",
            Rule::SnapshotName => "1-999 letters, numbers, underscores or hyphens",
            Rule::HexId => "1-40 hexadecimal characters",
            Rule::HexIdList => "a non-empty array of ids of 1-40 hexadecimal characters",
            Rule::PoolId => "1-40 characters",
            Rule::OnOff => "on or off",
            Rule::Blocksize => "one of 4k, 8k, 16k, 32k, 64k or 128k",
            Rule::IoType => "transactional or sequential",
            Rule::QosPriority => "one of 4, 8, 16, 32, 64 or 128",
            Rule::SizeUnit => "a single character: M, G or T",
            Rule::PositiveInt => "an integer, 1 or greater",
            Rule::KeepMax => "an integer from 1 to 512",
            Rule::Cron => {
                "a cron expression of five fields (minute hour day-of-month month day-of-week) using numbers, asterisks, commas and hyphens"
            }
            Rule::NonEmpty => "a non-empty string",
            Rule::Secret => "a non-empty string",
        }
    }

    /// Checks a JSON value against the rule.
    pub fn check(self, value: &Value) -> bool {
        match self {
            Rule::HexIdList => value
                .as_array()
                .is_some_and(|a| !a.is_empty() && a.iter().all(|v| Rule::HexId.check(v))),
            Rule::QosPriority => value
                .as_u64()
                .is_some_and(|n| [4, 8, 16, 32, 64, 128].contains(&n)),
            Rule::PositiveInt => value.as_u64().is_some_and(|n| n >= 1),
            // The SDK's schedule type holds `retention` as a string, so a
            // numeric string counts as the number.
            Rule::KeepMax => value
                .as_u64()
                .or_else(|| value.as_str().and_then(|s| s.trim().parse().ok()))
                .is_some_and(|n| (1..=512).contains(&n)),
            _ => value.as_str().is_some_and(|s| self.check_str(s)),
        }
    }

    /// Checks a string (a path id or a string field) against the rule.
    pub fn check_str(self, s: &str) -> bool {
        let len = s.chars().count();
        let word = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == '-';
        match self {
            Rule::ObjectName => (1..=30).contains(&len) && s.chars().all(word),
            Rule::PoolName => {
                (1..=20).contains(&len) && s.chars().all(|c| c.is_ascii_alphanumeric())
            }
            Rule::GroupName => {
                (1..=30).contains(&len) && s.chars().all(|c| c.is_ascii_alphanumeric())
            }
            Rule::Owner => (1..=20).contains(&len) && s.chars().all(word),
            Rule::SnapshotName => (1..=999).contains(&len) && s.chars().all(word),
            Rule::HexId => (1..=40).contains(&len) && s.chars().all(|c| c.is_ascii_hexdigit()),
            Rule::PoolId => (1..=40).contains(&len) && !s.contains('/'),
            Rule::OnOff => matches!(s, "on" | "off"),
            Rule::Blocksize => matches!(s, "4k" | "8k" | "16k" | "32k" | "64k" | "128k"),
            Rule::IoType => matches!(s, "transactional" | "sequential"),
            Rule::SizeUnit => matches!(s, "M" | "G" | "T"),
            Rule::Cron => valid_cron(s),
            Rule::NonEmpty | Rule::Secret => !s.trim().is_empty(),
            Rule::HexIdList | Rule::QosPriority | Rule::PositiveInt | Rule::KeepMax => false,
        }
    }
}

fn valid_cron(s: &str) -> bool {
    let fields: Vec<&str> = s.split_whitespace().collect();
    // minute, hour, day of month, month, day of week (0 and 7 are Sunday).
    const RANGES: [(u32, u32); 5] = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 7)];
    fields.len() == 5
        && fields.iter().zip(RANGES).all(|(field, (lo, hi))| {
            field.split(',').all(|item| {
                if item == "*" {
                    return true;
                }
                let bounds: Vec<&str> = item.split('-').collect();
                let nums: Option<Vec<u32>> = bounds.iter().map(|b| b.parse().ok()).collect();
                match nums.as_deref() {
                    Some([n]) => (lo..=hi).contains(n),
                    Some([a, b]) => (lo..=hi).contains(a) && (lo..=hi).contains(b) && a <= b,
                    _ => false,
                }
            })
        })
}

/// A value that breaks a rule: names the field and the rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub struct Violation {
    /// The body field, query parameter or path parameter.
    pub field: String,
    /// What is wrong, in words.
    pub problem: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "field `{}`: {}", self.field, self.problem)
    }
}

impl Violation {
    fn rule(field: &str, rule: Rule, value: Option<&Value>) -> Self {
        let shown = match (rule, value) {
            (Rule::Secret, _) | (_, None) => String::new(),
            (_, Some(Value::String(s))) => {
                let short: String = s.chars().take(60).collect();
                format!(" (got {short:?})")
            }
            (_, Some(v)) => {
                let short: String = v.to_string().chars().take(60).collect();
                format!(" (got {short})")
            }
        };
        Violation {
            field: field.to_string(),
            problem: format!("must be {}{shown}", rule.describe()),
        }
    }

    fn missing(field: &str, rule: Rule) -> Self {
        Violation {
            field: field.to_string(),
            problem: format!("is required ({})", rule.describe()),
        }
    }
}

/// One row of a body table.
#[derive(Clone, Copy, Debug)]
pub struct FieldSpec {
    /// The JSON key.
    pub name: &'static str,
    /// Whether the document marks it required.
    pub required: bool,
    /// The rule its value must meet.
    pub rule: Rule,
}

const fn req(name: &'static str, rule: Rule) -> FieldSpec {
    FieldSpec {
        name,
        required: true,
        rule,
    }
}

const fn opt(name: &'static str, rule: Rule) -> FieldSpec {
    FieldSpec {
        name,
        required: false,
        rule,
    }
}

/// The rule for the `{id}` path parameter of `endpoint`.
pub fn path_id_rule(endpoint: Endpoint) -> Rule {
    match endpoint {
        Endpoint::PoolDetail => Rule::PoolId,
        _ => Rule::HexId,
    }
}

/// The body table of `endpoint` on an array of `dialect`; empty when the
/// endpoint takes no body.
pub fn body_spec(endpoint: Endpoint, dialect: Dialect) -> Vec<FieldSpec> {
    use Endpoint as E;
    use Rule::*;
    match endpoint {
        E::LunCreate => vec![
            req("pool_name", PoolName),
            req("name", ObjectName),
            req("size", PositiveInt),
            opt("sing", SizeUnit),
            opt("blocksize", Blocksize),
            opt("deduplication", OnOff),
            opt("compression", OnOff),
            opt("thin_provision", OnOff),
            opt("io_type", IoType),
            opt("qos_priority", QosPriority),
            opt("quantity", PositiveInt),
        ],
        E::LunModify => vec![
            opt("size", PositiveInt),
            opt("sing", SizeUnit),
            opt("deduplication", OnOff),
            opt("compression", OnOff),
            opt("thin_provision", OnOff),
            opt("io_type", IoType),
            opt("qos_priority", QosPriority),
            opt("flash_cache", OnOff),
            opt("dram_cache", OnOff),
        ],
        E::TargetCreate => vec![
            req("name", ObjectName),
            req("auth_group_id", HexId),
            req("portal_group_id", HexId),
            req("owner", Owner),
            opt("lun_ids", HexIdList),
        ],
        E::TargetRename => vec![req("name", ObjectName), req("owner", Owner)],
        E::TargetPortalGroup => vec![req("portal_group_id", HexId), req("owner", Owner)],
        E::TargetAuthGroup => vec![req("auth_group_id", HexId), req("owner", Owner)],
        E::TargetAddLun | E::TargetRemoveLun => {
            vec![req("lun_ids", HexIdList), req("owner", Owner)]
        }
        // The document gives no rule for a rename; the create rule applies so
        // a rename can never produce a name create would refuse.
        E::AuthGroupCreate | E::AuthGroupRename => {
            vec![req("name", GroupName), req("owner", Owner)]
        }
        // The SDK's AddCHAP (authgroup.go@4cbe64a6) sends no owner.
        E::AuthGroupAddChap => vec![
            req("username", NonEmpty),
            req("password", Secret),
            match dialect {
                Dialect::Document => req("owner", Owner),
                Dialect::Sdk => opt("owner", Owner),
            },
        ],
        E::PortalGroupCreate => vec![req("name", NonEmpty), req("owner", Owner)],
        E::AuthGroupAddIqn => vec![
            req("iqn", NonEmpty),
            req(Field::ReqIqnAlias.name(dialect), NonEmpty),
            req("owner", Owner),
        ],
        E::SnapshotCreate => vec![req("name", SnapshotName), req("volume_id", HexId)],
        E::SnapshotClone => vec![req("name", SnapshotName)],
        E::ScheduleCreate => match dialect {
            Dialect::Document => vec![req("cron_time", Cron), req("keep_max", KeepMax)],
            // The SDK's CreateSchedule sends its SnapshotSchedule type
            // (`interval`, `retention`, `enabled`, ...); either spelling
            // is taken, and `check_body` requires one of each pair.
            Dialect::Sdk => vec![
                opt("cron_time", Cron),
                opt("keep_max", KeepMax),
                opt("interval", Cron),
                opt("retention", KeepMax),
            ],
        },
        _ => Vec::new(),
    }
}

/// The query parameters `endpoint` accepts, with their rules.
pub fn query_spec(endpoint: Endpoint, dialect: Dialect) -> Vec<FieldSpec> {
    match endpoint {
        Endpoint::SnapshotDetailList => {
            vec![opt(
                Field::QuerySnapshotListVolume.name(dialect),
                Rule::HexId,
            )]
        }
        Endpoint::SnapshotList => vec![opt("vol_id", Rule::HexId)],
        _ => Vec::new(),
    }
}

/// Checks a path id.
pub fn check_path_id(endpoint: Endpoint, id: &str) -> Result<(), Violation> {
    let rule = path_id_rule(endpoint);
    if rule.check_str(id) {
        Ok(())
    } else {
        Err(Violation::rule(
            "id",
            rule,
            Some(&Value::String(id.to_string())),
        ))
    }
}

/// Checks a request body against `endpoint`'s table. Fields outside the
/// table are let through, as the document's own examples carry some.
pub fn check_body(endpoint: Endpoint, dialect: Dialect, body: &Value) -> Result<(), Violation> {
    let spec = body_spec(endpoint, dialect);
    if spec.is_empty() {
        return Ok(());
    }
    let Some(object) = body.as_object() else {
        return Err(Violation {
            field: "body".into(),
            problem: "must be a JSON object".into(),
        });
    };
    for row in spec {
        match object.get(row.name) {
            None | Some(Value::Null) if row.required => {
                return Err(Violation::missing(row.name, row.rule));
            }
            None | Some(Value::Null) => {}
            Some(value) if !row.rule.check(value) => {
                return Err(Violation::rule(row.name, row.rule, Some(value)));
            }
            Some(_) => {}
        }
    }
    for (a, b, rule) in alternatives(endpoint, dialect) {
        let present = |k: &str| object.get(k).is_some_and(|v| !v.is_null());
        if !present(a) && !present(b) {
            return Err(Violation {
                field: format!("{a}` or `{b}"),
                problem: format!("one of the two is required ({})", rule.describe()),
            });
        }
    }
    Ok(())
}

/// Pairs of fields of which a body must carry at least one.
fn alternatives(endpoint: Endpoint, dialect: Dialect) -> Vec<(&'static str, &'static str, Rule)> {
    match (endpoint, dialect) {
        (Endpoint::ScheduleCreate, Dialect::Sdk) => vec![
            ("cron_time", "interval", Rule::Cron),
            ("keep_max", "retention", Rule::KeepMax),
        ],
        _ => Vec::new(),
    }
}

/// Checks query parameters against `endpoint`'s table.
pub fn check_query(
    endpoint: Endpoint,
    dialect: Dialect,
    query: &[(String, String)],
) -> Result<(), Violation> {
    for row in query_spec(endpoint, dialect) {
        if let Some((_, v)) = query.iter().find(|(k, _)| k == row.name)
            && !row.rule.check_str(v)
        {
            return Err(Violation::rule(
                row.name,
                row.rule,
                Some(&Value::String(v.clone())),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn cron_accepts_the_documented_example_and_refuses_steps_and_ranges() {
        assert!(Rule::Cron.check_str("45 23 * * 6"));
        assert!(Rule::Cron.check_str("0,30 8-18 * * 1-5"));
        assert!(!Rule::Cron.check_str("*/5 * * * *"));
        assert!(!Rule::Cron.check_str("60 * * * *"));
        assert!(!Rule::Cron.check_str("* * * *"));
        assert!(!Rule::Cron.check_str("@daily"));
        assert!(!Rule::Cron.check_str("5-1 * * * *"));
    }

    #[test]
    fn names_and_ids_follow_the_tables() {
        assert!(Rule::ObjectName.check_str("lun_01-a"));
        assert!(!Rule::ObjectName.check_str(&"a".repeat(31)));
        assert!(!Rule::ObjectName.check_str("bad name"));
        assert!(Rule::PoolName.check_str("pool1"));
        assert!(!Rule::PoolName.check_str("pool_1"));
        assert!(Rule::HexId.check_str("1"));
        assert!(Rule::HexId.check_str(&"f".repeat(40)));
        assert!(!Rule::HexId.check_str(&"f".repeat(41)));
        assert!(!Rule::HexId.check_str("xyz"));
        assert!(!Rule::HexId.check_str(""));
    }

    #[test]
    fn a_missing_field_and_a_bad_enum_are_named() {
        let err = check_body(
            Endpoint::LunCreate,
            Dialect::Document,
            &json!({"name": "a", "size": 1}),
        )
        .expect_err("missing pool_name");
        assert_eq!(err.field, "pool_name");
        let err = check_body(
            Endpoint::LunCreate,
            Dialect::Document,
            &json!({"pool_name": "p", "name": "a", "size": 1, "qos_priority": 5}),
        )
        .expect_err("qos");
        assert_eq!(err.field, "qos_priority");
        assert!(err.to_string().contains("4, 8, 16, 32, 64 or 128"), "{err}");
    }

    #[test]
    fn a_bad_secret_is_never_echoed() {
        let err = check_body(
            Endpoint::AuthGroupAddChap,
            Dialect::Document,
            &json!({"username": "u", "password": "   ", "owner": "A_A"}),
        )
        .expect_err("blank password");
        assert_eq!(err.field, "password");
        assert!(!err.to_string().contains("got"), "{err}");
    }
}
