//! A block-style YAML emitter whose output means the same to a YAML 1.1
//! reader (kubectl, Helm, PyYAML) as to a YAML 1.2 one.
//!
//! serde_yaml writes YAML 1.2: it leaves `Off`, `yes`, `y`, `1_000` or
//! `12:30` plain, and a YAML 1.1 reader takes them for booleans and numbers.
//! This emitter writes a string plain only when it starts with a letter and
//! is not one of the boolean or null words: no other plain scalar starting
//! with a letter resolves to anything but a string in either version. Every
//! other string is quoted; floats always carry a `.` and a signed exponent,
//! the only float form both versions read.

use std::fmt::Write as _;

use serde_json::{Map, Value};

/// Words a YAML 1.1 reader resolves to a boolean or null (compared without
/// case, which also covers YAML 1.2's `true`/`false`/`null`).
const SPECIAL_WORDS: [&str; 10] = [
    "y", "yes", "n", "no", "true", "false", "on", "off", "null", "~",
];

/// True when `word` is a YAML 1.1 boolean or null word in any spelling.
pub fn is_yaml11_special_word(word: &str) -> bool {
    SPECIAL_WORDS.iter().any(|w| w.eq_ignore_ascii_case(word))
}

/// `value` as one YAML document in block style (no `---` line), ending with
/// a newline.
pub fn to_string(value: &Value) -> String {
    let mut out = String::new();
    match value {
        Value::Object(map) if !map.is_empty() => mapping(&mut out, map, 0, false),
        Value::Array(items) if !items.is_empty() => sequence(&mut out, items, 0, false),
        scalar => {
            self::scalar(&mut out, scalar, 2);
            out.push('\n');
        }
    }
    out
}

fn indent(out: &mut String, n: usize) {
    out.extend(std::iter::repeat_n(' ', n));
}

/// Writes a block mapping at column `at`; with `inline_first` the first key
/// continues the current line (after a sequence's `- `).
fn mapping(out: &mut String, map: &Map<String, Value>, at: usize, inline_first: bool) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, at);
        }
        string(out, key, at + 2, false);
        out.push(':');
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                mapping(out, m, at + 2, false);
            }
            // A sequence under a key sits at the key's column, as kubectl
            // and serde_yaml write it.
            Value::Array(a) if !a.is_empty() => {
                out.push('\n');
                sequence(out, a, at, false);
            }
            other => {
                out.push(' ');
                scalar(out, other, at + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes a block sequence whose dashes are at column `at`.
fn sequence(out: &mut String, items: &[Value], at: usize, inline_first: bool) {
    for (i, item) in items.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(out, at);
        }
        out.push_str("- ");
        match item {
            Value::Object(m) if !m.is_empty() => mapping(out, m, at + 2, true),
            Value::Array(a) if !a.is_empty() => sequence(out, a, at + 2, true),
            other => {
                scalar(out, other, at + 2);
                out.push('\n');
            }
        }
    }
}

/// Writes a scalar or an empty collection; a block scalar's lines go at
/// column `content_at`.
fn scalar(out: &mut String, value: &Value, content_at: usize) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => number(out, n),
        Value::String(s) => string(out, s, content_at, true),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

fn number(out: &mut String, n: &serde_json::Number) {
    let text = n.to_string();
    if n.is_f64() {
        // YAML 1.1 floats need a `.` and, with an exponent, its sign:
        // `1e21` is a string to PyYAML, `1.0e+21` a float to both.
        let (mantissa, exponent) = match text.split_once(['e', 'E']) {
            Some((m, e)) => (m, Some(e)),
            None => (text.as_str(), None),
        };
        out.push_str(mantissa);
        if !mantissa.contains('.') {
            out.push_str(".0");
        }
        if let Some(e) = exponent {
            out.push('e');
            if !e.starts_with(['+', '-']) {
                out.push('+');
            }
            out.push_str(e);
        }
    } else {
        out.push_str(&text);
    }
}

/// True when `s` may be written plain and reads back as this string in YAML
/// 1.1 and 1.2.
pub fn plain_is_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    // A leading letter rules out numbers, timestamps, sexagesimals, `.inf`,
    // `=`, `<<` and every indicator character; what is left to exclude is
    // the boolean and null words and what ends or comments a plain scalar.
    first.is_ascii_alphabetic()
        && !is_yaml11_special_word(s)
        && s.chars().all(|c| (' '..='~').contains(&c))
        && !s.ends_with([' ', ':'])
        && !s.contains(": ")
        && !s.contains(" #")
}

/// True when `s` can be a literal block scalar (`|`, `|-`) that reads back
/// exactly.
fn literal_is_safe(s: &str) -> bool {
    let body = s.strip_suffix('\n').unwrap_or(s);
    body.contains('\n')
        && !body.ends_with('\n')
        // The first line sets the block's indentation: it may not start
        // with blanks, nor be empty (a leading empty line would need an
        // explicit indentation indicator to stay exact).
        && !body.starts_with([' ', '\t', '\n'])
        && body
            .chars()
            .all(|c| c == '\n' || c == '\t' || !is_break_or_control(c))
}

/// Characters a YAML reader treats as line breaks or that may not appear
/// raw in a YAML stream.
fn is_break_or_control(c: char) -> bool {
    c.is_control() || matches!(c, '\u{2028}' | '\u{2029}' | '\u{feff}')
}

/// Writes a string: plain when that is safe, a literal block for multi-line
/// text (only where `block_ok`: not for keys), single-quoted when it fits on
/// one line, double-quoted with escapes otherwise.
fn string(out: &mut String, s: &str, content_at: usize, block_ok: bool) {
    if plain_is_safe(s) {
        out.push_str(s);
    } else if block_ok && literal_is_safe(s) {
        let body = s.strip_suffix('\n');
        out.push_str(if body.is_some() { "|" } else { "|-" });
        for line in body.unwrap_or(s).split('\n') {
            out.push('\n');
            if !line.is_empty() {
                indent(out, content_at);
                out.push_str(line);
            }
        }
    } else if !s.chars().any(is_break_or_control) {
        out.push('\'');
        out.push_str(&s.replace('\'', "''"));
        out.push('\'');
    } else {
        out.push('"');
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                '\n' => out.push_str("\\n"),
                '\t' => out.push_str("\\t"),
                c if is_break_or_control(c) => {
                    let _ = write!(out, "\\u{:04x}", u32::from(c));
                }
                c => out.push(c),
            }
        }
        out.push('"');
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn reparse(yaml: &str) -> Value {
        serde_yaml::from_str(yaml).expect("the emitted YAML parses")
    }

    #[test]
    fn yaml11_booleans_and_numbers_are_quoted() {
        for word in [
            "Off",
            "On",
            "yes",
            "Y",
            "n",
            "NO",
            "true",
            "Null",
            "~",
            "1_000",
            "12:30",
            "0x1F",
            "017",
            "2001-12-14",
            ".inf",
            "=",
            "<<",
            "1e3",
            "",
        ] {
            let yaml = to_string(&json!({ "v": word }));
            assert!(
                yaml.starts_with("v: '") || yaml.starts_with("v: \""),
                "{word:?} written plain: {yaml}"
            );
            assert_eq!(reparse(&yaml), json!({ "v": word }), "{yaml}");
        }
    }

    #[test]
    fn ordinary_words_stay_plain_and_blocks_stay_literal() {
        let v = json!({
            "kind": "CustomResourceDefinition",
            "description": "First line.\nSecond line.",
            "items": ["LastState", {"a": 1, "b": [true, null]}],
            "empty": {},
            "none": [],
        });
        let yaml = to_string(&v);
        assert!(yaml.contains("kind: CustomResourceDefinition\n"), "{yaml}");
        assert!(
            yaml.contains("description: |-\n  First line.\n  Second line.\n"),
            "{yaml}"
        );
        assert!(yaml.contains("- LastState\n"), "{yaml}");
        assert_eq!(reparse(&yaml), v);
    }

    #[test]
    fn floats_carry_a_point_and_a_signed_exponent() {
        let yaml = to_string(&json!({"a": 64.0, "b": 1e21, "c": 1.5e-7, "d": 3}));
        assert!(yaml.contains("a: 64.0\n"), "{yaml}");
        assert!(yaml.contains("b: 1.0e+21\n"), "{yaml}");
        assert!(yaml.contains("c: 1.5e-7\n"), "{yaml}");
        assert!(yaml.contains("d: 3\n"), "{yaml}");
        assert_eq!(
            reparse(&yaml),
            json!({"a": 64.0, "b": 1e21, "c": 1.5e-7, "d": 3})
        );
    }

    fn arb_value() -> impl Strategy<Value = Value> {
        let string = prop_oneof![
            "[a-zA-Z0-9 :#'\"\\\\\n\t._/-]{0,12}",
            Just("Off".to_string()),
            Just("\n lead".to_string()),
            Just("end\n\n".to_string()),
            Just("a\u{2028}b".to_string()),
            Just("x\r\ny".to_string()),
        ];
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| json!(f)),
            string.prop_map(Value::String),
        ];
        leaf.prop_recursive(4, 32, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
                prop::collection::btree_map("[a-zA-Z0-9 :#'._-]{0,8}", inner, 0..5)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever the value, the YAML 1.2 reader gets it back (the YAML 1.1
        /// side is checked with PyYAML in tests/yaml11.rs).
        #[test]
        fn every_value_round_trips(v in arb_value()) {
            let yaml = to_string(&v);
            prop_assert_eq!(reparse(&yaml), v, "{}", yaml);
        }
    }
}
