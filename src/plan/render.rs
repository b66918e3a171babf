//! The plan for a person (text, coloured only when asked or when standard
//! output is a terminal), for a bot (JSON: [`super::report`] documents the
//! shape) and for a pull-request comment (Markdown).

use std::fmt::Write as _;

use super::report::{Call, ObjectPlan, PlanReport, Verdict};

/// Output formats.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Lines for a terminal.
    Text,
    /// One JSON document (`version: 1`).
    Json,
    /// A Markdown comment.
    Markdown,
}

/// When to colour text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Color {
    /// When standard output is a terminal (and `NO_COLOR` is unset).
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl Color {
    /// Whether to colour, given whether stdout is a terminal.
    pub fn enabled(self, terminal: bool) -> bool {
        match self {
            Color::Always => true,
            Color::Never => false,
            Color::Auto => terminal && std::env::var_os("NO_COLOR").is_none(),
        }
    }
}

/// Renders the report.
pub fn render(report: &PlanReport, format: Format, color: bool) -> String {
    match format {
        Format::Text => text(report, color),
        Format::Json => json(report),
        Format::Markdown => markdown(report),
    }
}

/// The JSON document, with a final newline.
pub fn json(report: &PlanReport) -> String {
    let mut s = serde_json::to_string_pretty(report).unwrap_or_else(|e| {
        // Only plain data is serialised: this cannot fail, but a message
        // beats a panic.
        format!("{{\"error\": {:?}}}", e.to_string())
    });
    s.push('\n');
    s
}

struct Paint(bool);

impl Paint {
    fn wrap(&self, code: &str, s: &str) -> String {
        if self.0 {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }
    fn green(&self, s: &str) -> String {
        self.wrap("32", s)
    }
    fn yellow(&self, s: &str) -> String {
        self.wrap("33", s)
    }
    fn red(&self, s: &str) -> String {
        self.wrap("31", s)
    }
    fn bold(&self, s: &str) -> String {
        self.wrap("1", s)
    }
    fn dim(&self, s: &str) -> String {
        self.wrap("2", s)
    }
}

/// The sign of a call: `+` makes, `-` removes, `~` changes.
fn sign(call: &Call) -> &'static str {
    match call.action.as_str() {
        "Create" | "Map" | "TakeSnapshot" | "SetNativeSchedule" | "Sync" => "+",
        "Delete" | "Unmap" | "PruneSnapshot" | "RemoveNativeSchedule" => "-",
        _ => "~",
    }
}

/// `1 array`, `2 arrays`.
fn plural(n: usize, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

fn summary_line(report: &PlanReport) -> String {
    let s = &report.summary;
    format!(
        "{} on {}: {} to change, {} in sync, {} refused, {} waiting",
        plural(s.objects, "object"),
        plural(report.arrays.len(), "array"),
        s.changes,
        s.in_sync,
        s.refused,
        s.waiting
    )
}

fn verdict_word(v: Verdict) -> &'static str {
    match v {
        Verdict::InSync => "in sync",
        Verdict::Changes => "changes",
        Verdict::Drifted => "drifted (reported only)",
        Verdict::Waiting => "waiting",
        Verdict::Paused => "paused",
        Verdict::Refused => "refused",
    }
}

/// Text for a terminal.
pub fn text(report: &PlanReport, color: bool) -> String {
    let p = Paint(color);
    let mut out = String::new();
    let _ = writeln!(out, "{}", p.bold(&summary_line(report)));
    let _ = writeln!(out);
    for a in &report.arrays {
        let head = format!(
            "StorageArray {}/{} ({} at {}{})",
            a.namespace,
            a.name,
            a.vendor,
            a.endpoint,
            if a.simulated { ", simulated" } else { "" }
        );
        match &a.error {
            None => {
                let _ = writeln!(
                    out,
                    "{} {head}: reachable{}",
                    p.green("="),
                    a.version
                        .as_ref()
                        .map(|v| format!(", {v}"))
                        .unwrap_or_default()
                );
            }
            Some(e) => {
                let _ = writeln!(out, "{} {head}: {}", p.red("!"), p.red(e));
            }
        }
    }
    for o in &report.objects {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{} (array {}): {}",
            p.bold(&format!("{} {}/{}", o.kind, o.namespace, o.name)),
            o.array,
            match o.verdict {
                Verdict::Refused => p.red(verdict_word(o.verdict)),
                Verdict::Changes | Verdict::Drifted => p.yellow(verdict_word(o.verdict)),
                _ => p.green(verdict_word(o.verdict)),
            }
        );
        for c in &o.calls {
            let s = sign(c);
            let painted = match s {
                "+" => p.green(s),
                "-" => p.red(s),
                _ => p.yellow(s),
            };
            let _ = writeln!(out, "  {painted} {}: {}", c.action, c.note);
        }
        for ch in &o.changes {
            let _ = writeln!(
                out,
                "    {}: {} → {}{}",
                ch.field,
                shown(&ch.from),
                shown(&ch.to),
                if ch.correctable {
                    String::new()
                } else {
                    p.dim(" (no call can change it)")
                }
            );
        }
        if let Some(m) = &o.message {
            let line = match (&o.reason, o.verdict) {
                (Some(r), Verdict::Refused) => p.red(&format!("! {r}: {m}")),
                (Some(r), _) => format!("{r}: {m}"),
                (None, _) => p.dim(m),
            };
            let _ = writeln!(out, "  {line}");
        }
        for n in &o.notes {
            let _ = writeln!(out, "  {}", p.dim(&format!("note: {n}")));
        }
    }
    if !report.ignored.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(
            out,
            "{}",
            p.dim(&format!(
                "left alone (not the operator's kinds): {}",
                report.ignored.join(", ")
            ))
        );
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "{}",
        match report.exit_code {
            0 => p.green("No changes: the arrays match the manifests."),
            2 => p.yellow("The operator would make the calls above."),
            _ => p.red("The operator would refuse some objects, or an array cannot be used."),
        }
    );
    out
}

/// A value as shown: an empty one is `(none)`.
fn shown(value: &str) -> &str {
    if value.is_empty() { "(none)" } else { value }
}

/// Escapes a table cell.
fn cell(s: &str) -> String {
    s.replace('|', "\\|").replace('\n', " ")
}

/// A Markdown comment for a pull request.
pub fn markdown(report: &PlanReport) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "### array-operator plan");
    let _ = writeln!(out);
    let _ = writeln!(out, "{}", summary_line(report));
    let _ = writeln!(out);
    let _ = writeln!(out, "| array | vendor | endpoint | state |");
    let _ = writeln!(out, "|---|---|---|---|");
    for a in &report.arrays {
        let _ = writeln!(
            out,
            "| `{}/{}` | {} | {}{} | {} |",
            a.namespace,
            a.name,
            a.vendor,
            cell(&a.endpoint),
            if a.simulated { " (simulated)" } else { "" },
            match &a.error {
                None => "reachable".to_string(),
                Some(e) => format!(":x: {}", cell(e)),
            }
        );
    }
    let changing: Vec<&ObjectPlan> = report
        .objects
        .iter()
        .filter(|o| !o.calls.is_empty() || !o.changes.is_empty())
        .collect();
    if !changing.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "#### Changes");
        let _ = writeln!(out);
        let _ = writeln!(out, "| object | array | call | what |");
        let _ = writeln!(out, "|---|---|---|---|");
        for o in &changing {
            for c in &o.calls {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | {} {} | {} |",
                    o.key(),
                    o.array,
                    sign(c),
                    c.action,
                    cell(&c.note)
                );
            }
            for ch in &o.changes {
                let _ = writeln!(
                    out,
                    "| `{}` | `{}` | {} | `{}`: {} → {} |",
                    o.key(),
                    o.array,
                    if ch.correctable {
                        "differs"
                    } else {
                        "differs (no call can change it)"
                    },
                    ch.field,
                    cell(shown(&ch.from)),
                    cell(shown(&ch.to))
                );
            }
        }
    }
    let refused: Vec<&ObjectPlan> = report.refusals().collect();
    if !refused.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "#### Refused");
        let _ = writeln!(out);
        for o in refused {
            let _ = writeln!(
                out,
                "- :x: `{}` — **{}**: {}",
                o.key(),
                o.reason.as_deref().unwrap_or("Refused"),
                o.message.as_deref().unwrap_or_default()
            );
        }
    }
    let quiet: Vec<&ObjectPlan> = report
        .objects
        .iter()
        .filter(|o| o.calls.is_empty() && o.changes.is_empty() && o.verdict != Verdict::Refused)
        .collect();
    if !quiet.is_empty() {
        let _ = writeln!(out);
        let _ = writeln!(out, "#### No calls");
        let _ = writeln!(out);
        for o in quiet {
            let _ = writeln!(out, "- `{}`: {}", o.key(), verdict_word(o.verdict));
        }
    }
    let _ = writeln!(out);
    let _ = writeln!(
        out,
        "Exit code {}: {}.",
        report.exit_code,
        match report.exit_code {
            0 => "no changes",
            2 => "changes",
            _ => "refusals or unusable arrays",
        }
    );
    out
}
