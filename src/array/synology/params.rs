//! Request parameters encoded the way real DSM clients put them on the wire
//! (see `shared/dsm-wire/README.md`): some strings JSON-quoted, others raw,
//! lowercase booleans, bare integers and JSON arrays for lists.

use serde::Serialize;

/// The parameters of one call, in the order they were added.
#[derive(Clone, Default)]
pub struct Params {
    pairs: Vec<(&'static str, String)>,
    /// Names whose values must never be printed (CHAP passwords).
    secret: Vec<&'static str>,
}

impl std::fmt::Debug for Params {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        for (k, v) in &self.pairs {
            if self.secret.contains(k) {
                list.entry(&(k, "<redacted>"));
            } else {
                list.entry(&(k, v));
            }
        }
        list.finish()
    }
}

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Params::default()
    }

    /// A string sent as is (`name=pvc-1`).
    pub fn raw(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.pairs.push((key, value.into()));
        self
    }

    /// A secret string sent as is; never shown by `Debug`.
    pub fn secret(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.secret.push(key);
        self.raw(key, value)
    }

    /// A string sent as a JSON string (`uuid="..."`), as DSM expects for ids.
    pub fn quoted(self, key: &'static str, value: &str) -> Self {
        let encoded = to_python_json(&value);
        self.raw(key, encoded)
    }

    /// A list or object sent as JSON (`target_ids=[3]`).
    pub fn json<T: Serialize + ?Sized>(self, key: &'static str, value: &T) -> Self {
        let encoded = to_python_json(value);
        self.raw(key, encoded)
    }

    /// A boolean as `true` / `false`.
    pub fn bool(self, key: &'static str, value: bool) -> Self {
        self.raw(key, if value { "true" } else { "false" })
    }

    /// An integer as bare decimal.
    pub fn int(self, key: &'static str, value: impl Into<i128>) -> Self {
        self.raw(key, value.into().to_string())
    }

    /// Adds the raw string when present.
    pub fn raw_opt(self, key: &'static str, value: Option<&str>) -> Self {
        match value {
            Some(v) => self.raw(key, v),
            None => self,
        }
    }

    /// Adds the boolean when present.
    pub fn bool_opt(self, key: &'static str, value: Option<bool>) -> Self {
        match value {
            Some(v) => self.bool(key, v),
            None => self,
        }
    }

    /// Adds the integer when present.
    pub fn int_opt<I: Into<i128>>(self, key: &'static str, value: Option<I>) -> Self {
        match value {
            Some(v) => self.int(key, v),
            None => self,
        }
    }

    /// The encoded pairs, in order.
    pub fn pairs(&self) -> &[(&'static str, String)] {
        &self.pairs
    }
}

/// JSON as Python's `json.dumps` writes it (`", "` and `": "` separators), so
/// the bytes on the wire match what synology-api sends.
pub fn to_python_json<T: Serialize + ?Sized>(value: &T) -> String {
    let mut out = Vec::new();
    let mut ser = serde_json::Serializer::with_formatter(&mut out, PythonFormatter);
    match value.serialize(&mut ser) {
        Ok(()) => String::from_utf8(out).unwrap_or_default(),
        // Serializing plain data (strings, numbers, derived structs) to a Vec
        // cannot fail; fall back to serde_json's own output just in case.
        Err(_) => serde_json::to_string(value).unwrap_or_default(),
    }
}

struct PythonFormatter;

impl serde_json::ser::Formatter for PythonFormatter {
    fn begin_array_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_key<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
        first: bool,
    ) -> std::io::Result<()> {
        if first {
            Ok(())
        } else {
            writer.write_all(b", ")
        }
    }

    fn begin_object_value<W: ?Sized + std::io::Write>(
        &mut self,
        writer: &mut W,
    ) -> std::io::Result<()> {
        writer.write_all(b": ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_like_synology_api() {
        let p = Params::new()
            .quoted("uuid", "abc")
            .json("target_ids", &[3])
            .json("names", &["a", "b"])
            .bool("nowait", true)
            .int("size", 10u64)
            .secret("password", "hunter22");
        let pairs = p.pairs();
        assert_eq!(pairs[0].1, "\"abc\"");
        assert_eq!(pairs[1].1, "[3]");
        assert_eq!(pairs[2].1, "[\"a\", \"b\"]");
        assert_eq!(pairs[3].1, "true");
        assert_eq!(pairs[4].1, "10");
        let debug = format!("{p:?}");
        assert!(!debug.contains("hunter22"), "{debug}");
    }

    #[test]
    fn objects_use_python_separators() {
        let v = serde_json::json!([{"dev_attrib": "emulate_tpws", "enable": 1}]);
        assert_eq!(
            to_python_json(&v),
            "[{\"dev_attrib\": \"emulate_tpws\", \"enable\": 1}]"
        );
    }
}
