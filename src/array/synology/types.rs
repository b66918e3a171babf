//! Response shapes shared by several APIs, tolerant of the alternative forms
//! the DSM docs show (a field that is a string in one listing and an object or
//! a number in another).

use serde::{Deserialize, Deserializer, Serialize};

/// A value DSM sends as a number in one answer and as a string in another
/// (a DR plan's `role` is `1` or `"mainsite"`, `target_type` `2` or `"lun"`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum NumOrText {
    /// The numeric form.
    Num(i64),
    /// The text form.
    Text(String),
}

impl NumOrText {
    /// The value as text (numbers in decimal).
    pub fn as_text(&self) -> String {
        match self {
            NumOrText::Num(n) => n.to_string(),
            NumOrText::Text(s) => s.clone(),
        }
    }
}

/// Progress detail of a snapshot being taken.
#[derive(Clone, Debug, Default, PartialEq, Eq, Deserialize)]
pub struct SnapshotProgress {
    /// Percent done, `-1` when unknown.
    #[serde(default)]
    pub percent: Option<i64>,
    /// The step name, for example `waiting`.
    #[serde(default)]
    pub step: Option<String>,
}

/// A snapshot's status: `"Healthy"` in `list_snapshot`, but
/// `{"type": "Healthy", "progress": {...}}` in a LUN listing's `snapshots`.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum SnapshotStatus {
    /// The plain form.
    Text(String),
    /// The object form.
    Detail {
        /// The state, for example `Healthy`.
        #[serde(rename = "type")]
        kind: String,
        /// Progress while it is being taken.
        #[serde(default)]
        progress: Option<SnapshotProgress>,
    },
}

impl SnapshotStatus {
    /// The state name, whichever form it came in.
    pub fn kind(&self) -> &str {
        match self {
            SnapshotStatus::Text(s) => s,
            SnapshotStatus::Detail { kind, .. } => kind,
        }
    }
}

/// Deserializes a flag DSM sends as `true`/`false`, `0`/`1` or `"yes"`/`"no"`.
pub fn flex_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        B(bool),
        N(i64),
        S(String),
    }
    Ok(match Flex::deserialize(d)? {
        Flex::B(b) => b,
        Flex::N(n) => n != 0,
        Flex::S(s) => matches!(s.as_str(), "true" | "yes" | "1"),
    })
}

/// Like [`flex_bool`] for an optional field.
pub fn flex_bool_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<bool>, D::Error> {
    flex_bool(d).map(Some)
}

/// Deserializes a number DSM sends either bare or as a decimal string.
pub fn flex_u64<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Flex {
        N(u64),
        F(f64),
        S(String),
    }
    match Flex::deserialize(d)? {
        Flex::N(n) => Ok(n),
        Flex::F(f) if f >= 0.0 => Ok(f as u64),
        Flex::F(f) => Err(serde::de::Error::custom(format!("negative size {f}"))),
        Flex::S(s) => s
            .parse()
            .map_err(|_| serde::de::Error::custom(format!("not a number: {s:?}"))),
    }
}

/// Like [`flex_u64`] for an optional field.
pub fn flex_u64_opt<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    flex_u64(d).map(Some)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshot_status_accepts_both_shapes() {
        let a: SnapshotStatus = serde_json::from_str("\"Healthy\"").expect("text");
        let b: SnapshotStatus = serde_json::from_str(
            r#"{"type":"Healthy","progress":{"percent":-1,"step":"waiting"}}"#,
        )
        .expect("object");
        assert_eq!(a.kind(), "Healthy");
        assert_eq!(b.kind(), "Healthy");
    }

    #[test]
    fn num_or_text_accepts_both() {
        let a: NumOrText = serde_json::from_str("1").expect("num");
        let b: NumOrText = serde_json::from_str("\"mainsite\"").expect("text");
        assert_eq!(a.as_text(), "1");
        assert_eq!(b.as_text(), "mainsite");
    }
}
