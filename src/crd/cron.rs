//! Schema rules for a 5-field cron expression: one CEL rule per field, so
//! that `kubectl apply` refuses `99 * * * *` and says which field is out of
//! range. The shape (five fields or a shortcut) is `shared::CRON_PATTERN`;
//! the controller re-checks with the cron crate what these rules let
//! through (for example `31 2 30 2 *`, a February 30th).
//!
//! Shared by SnapshotSchedule and ReplicationPlan.

use kube::core::Rule;

/// One field of a cron expression, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CronField {
    /// 0-59.
    Minute,
    /// 0-23.
    Hour,
    /// 1-31.
    DayOfMonth,
    /// 1-12 or JAN-DEC.
    Month,
    /// 0-7 (0 and 7 are Sunday) or SUN-SAT.
    DayOfWeek,
}

impl CronField {
    /// The five fields, in order.
    pub const ALL: [CronField; 5] = [
        CronField::Minute,
        CronField::Hour,
        CronField::DayOfMonth,
        CronField::Month,
        CronField::DayOfWeek,
    ];

    /// The field's name in messages.
    pub fn name(self) -> &'static str {
        match self {
            CronField::Minute => "minute",
            CronField::Hour => "hour",
            CronField::DayOfMonth => "day-of-month",
            CronField::Month => "month",
            CronField::DayOfWeek => "day-of-week",
        }
    }

    /// The values the field takes, for messages.
    pub fn range(self) -> &'static str {
        match self {
            CronField::Minute => "0-59",
            CronField::Hour => "0-23",
            CronField::DayOfMonth => "1-31",
            CronField::Month => "1-12 or JAN-DEC",
            CronField::DayOfWeek => "0-7 or SUN-SAT",
        }
    }

    /// One value of the field (RE2, no backslashes so it survives CEL and
    /// YAML quoting unchanged).
    fn value(self) -> &'static str {
        match self {
            CronField::Minute => "[0-5]?[0-9]",
            CronField::Hour => "[01]?[0-9]|2[0-3]",
            CronField::DayOfMonth => "0?[1-9]|[12][0-9]|3[01]",
            CronField::Month => "0?[1-9]|1[0-2]|JAN|FEB|MAR|APR|MAY|JUN|JUL|AUG|SEP|OCT|NOV|DEC",
            CronField::DayOfWeek => "[0-7]|SUN|MON|TUE|WED|THU|FRI|SAT",
        }
    }

    /// The field as a regular expression: a list of `*`, values or ranges,
    /// each with an optional step of 1 to 99 (`?` alone in the day fields).
    pub fn pattern(self) -> String {
        let v = self.value();
        let item = format!("([*]|({v})(-({v}))?)(/[1-9][0-9]?)?");
        let list = format!("{item}(,{item})*");
        match self {
            CronField::DayOfMonth | CronField::DayOfWeek => format!("([?]|{list})"),
            _ => format!("({list})"),
        }
    }

    /// The regular expression a whole schedule must match for this field to
    /// be in range (the fields before it are skipped).
    pub fn schedule_pattern(self) -> String {
        let index = CronField::ALL.iter().position(|f| *f == self).unwrap_or(0);
        let end = if self == CronField::DayOfWeek {
            "$"
        } else {
            " "
        };
        format!("^(?i)([^ ]+ ){{{index}}}{}{end}", self.pattern())
    }

    /// The CEL rule on a `schedule` string: shortcuts pass, otherwise this
    /// field must be in range.
    pub fn rule(self) -> Rule {
        Rule::new(format!(
            "self.startsWith('@') || self.matches('{}')",
            self.schedule_pattern()
        ))
        .message(kube::core::Message::Message(format!(
            "the {} field of the cron schedule must be {}, as values, lists, ranges or steps",
            self.name(),
            self.range()
        )))
    }
}

/// The rule for the minute field (for `#[x_kube(validation = ...)]`).
pub fn minute_rule() -> Rule {
    CronField::Minute.rule()
}

/// The rule for the hour field.
pub fn hour_rule() -> Rule {
    CronField::Hour.rule()
}

/// The rule for the day-of-month field.
pub fn day_of_month_rule() -> Rule {
    CronField::DayOfMonth.rule()
}

/// The rule for the month field.
pub fn month_rule() -> Rule {
    CronField::Month.rule()
}

/// The rule for the day-of-week field.
pub fn day_of_week_rule() -> Rule {
    CronField::DayOfWeek.rule()
}
