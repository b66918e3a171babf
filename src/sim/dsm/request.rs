//! One WebAPI request as the simulator sees it (query and form merged, the
//! sid from `_sid` or the `id` cookie), and strict typed access to its
//! parameters that accepts both the JSON-quoted and the raw form real
//! clients send.

use serde_json::Value;

/// A parsed request.
#[derive(Clone, Debug, Default)]
pub struct DsmRequest {
    /// `GET` or `POST`.
    pub http_method: String,
    /// The CGI file, for example `entry.cgi`.
    pub cgi: String,
    /// The API named in the path (`/webapi/entry.cgi/SYNO.API.Auth.UIConfig`).
    pub path_api: Option<String>,
    /// Query then form parameters, in order; a key may repeat.
    pub params: Vec<(String, String)>,
    /// The `id` cookie.
    pub cookie_sid: Option<String>,
    /// The `X-SYNO-TOKEN` header.
    pub header_token: Option<String>,
}

impl DsmRequest {
    /// The first value of `key`.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Every value of `key` (a repeated key is how Python lists arrive).
    pub fn all(&self, key: &str) -> Vec<&str> {
        self.params
            .iter()
            .filter(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
            .collect()
    }

    /// The API: the `api` parameter, or the one named in the path.
    pub fn api(&self) -> Option<&str> {
        self.get("api").or(self.path_api.as_deref())
    }
}

/// Typed parameter access with the error codes of one API family: a
/// missing parameter and a malformed one each get their documented code.
pub struct Args<'a> {
    req: &'a DsmRequest,
    missing: i64,
    invalid: i64,
}

/// Decodes a value that may be JSON-quoted (`"abc"`) or raw (`abc`); DSM
/// JSON-decodes each value and falls back to the raw string.
pub fn unquote(raw: &str) -> String {
    if raw.starts_with('"')
        && let Ok(Value::String(s)) = serde_json::from_str::<Value>(raw)
    {
        return s;
    }
    raw.to_string()
}

impl<'a> Args<'a> {
    /// Parameter access for `req`; `missing`/`invalid` are the codes sent
    /// for an absent and for a malformed parameter.
    pub fn new(req: &'a DsmRequest, missing: i64, invalid: i64) -> Self {
        Args {
            req,
            missing,
            invalid,
        }
    }

    /// The code for a malformed parameter.
    pub fn invalid(&self) -> i64 {
        self.invalid
    }

    /// Whether the parameter was sent.
    pub fn has(&self, key: &str) -> bool {
        self.req.get(key).is_some()
    }

    /// A required string, quoted or raw.
    pub fn string(&self, key: &str) -> Result<String, i64> {
        self.opt_string(key)?.ok_or(self.missing)
    }

    /// An optional string, quoted or raw.
    pub fn opt_string(&self, key: &str) -> Result<Option<String>, i64> {
        Ok(self.req.get(key).map(unquote))
    }

    /// A required non-empty string.
    pub fn non_empty(&self, key: &str) -> Result<String, i64> {
        let s = self.string(key)?;
        if s.is_empty() {
            return Err(self.missing);
        }
        Ok(s)
    }

    /// A required integer, bare or quoted.
    pub fn int(&self, key: &str) -> Result<i64, i64> {
        self.opt_int(key)?.ok_or(self.missing)
    }

    /// An optional integer, bare or quoted.
    pub fn opt_int(&self, key: &str) -> Result<Option<i64>, i64> {
        match self.req.get(key) {
            None => Ok(None),
            Some(v) => unquote(v)
                .trim()
                .parse::<i64>()
                .map(Some)
                .map_err(|_| self.invalid),
        }
    }

    /// An optional non-negative integer.
    pub fn opt_u64(&self, key: &str) -> Result<Option<u64>, i64> {
        match self.opt_int(key)? {
            None => Ok(None),
            Some(n) if n >= 0 => Ok(Some(n as u64)),
            Some(_) => Err(self.invalid),
        }
    }

    /// An optional boolean: `true`/`false` (also `1`/`0`, `yes`/`no`).
    pub fn opt_bool(&self, key: &str) -> Result<Option<bool>, i64> {
        match self.req.get(key) {
            None => Ok(None),
            Some(v) => match unquote(v).as_str() {
                "true" | "1" | "yes" => Ok(Some(true)),
                "false" | "0" | "no" => Ok(Some(false)),
                _ => Err(self.invalid),
            },
        }
    }

    /// A list of strings: a JSON array, a repeated key, or one (quoted or
    /// raw) string. `None` when absent.
    pub fn opt_string_list(&self, key: &str) -> Result<Option<Vec<String>>, i64> {
        let values = self.req.all(key);
        match values.as_slice() {
            [] => Ok(None),
            [one] if one.starts_with('[') => match serde_json::from_str::<Value>(one) {
                Ok(Value::Array(items)) => items
                    .into_iter()
                    .map(|v| match v {
                        Value::String(s) => Ok(s),
                        Value::Number(n) => Ok(n.to_string()),
                        _ => Err(self.invalid),
                    })
                    .collect::<Result<Vec<_>, _>>()
                    .map(Some),
                _ => Err(self.invalid),
            },
            many => Ok(Some(many.iter().map(|v| unquote(v)).collect())),
        }
    }

    /// A list of integers: a JSON array of numbers or numeric strings, a
    /// repeated key, or one value.
    pub fn opt_int_list(&self, key: &str) -> Result<Option<Vec<i64>>, i64> {
        match self.opt_string_list(key)? {
            None => Ok(None),
            Some(items) => items
                .iter()
                .map(|s| s.trim().parse::<i64>().map_err(|_| self.invalid))
                .collect::<Result<Vec<_>, _>>()
                .map(Some),
        }
    }

    /// An optional JSON value (arrays of objects such as `dev_attribs`).
    pub fn opt_json(&self, key: &str) -> Result<Option<Value>, i64> {
        match self.req.get(key) {
            None => Ok(None),
            Some(v) => serde_json::from_str(v).map(Some).map_err(|_| self.invalid),
        }
    }

    /// The `additional` names asked for: a JSON array, a repeated key, or a
    /// boolean `true` (meaning all).
    pub fn additional(&self) -> Result<Additional, i64> {
        match self.req.get("additional") {
            None => Ok(Additional::Names(Vec::new())),
            Some("true") => Ok(Additional::All),
            Some("false") => Ok(Additional::Names(Vec::new())),
            Some(_) => Ok(Additional::Names(
                self.opt_string_list("additional")?.unwrap_or_default(),
            )),
        }
    }
}

/// What `additional` asked for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Additional {
    /// Everything (`additional=true`).
    All,
    /// These names.
    Names(Vec<String>),
}

impl Additional {
    /// Whether `name` was asked for.
    pub fn wants(&self, name: &str) -> bool {
        match self {
            Additional::All => true,
            Additional::Names(n) => n.iter().any(|x| x == name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(pairs: &[(&str, &str)]) -> DsmRequest {
        DsmRequest {
            params: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn quoted_and_raw_strings_are_the_same() {
        let r = req(&[("a", "\"x-1\""), ("b", "x-1"), ("c", "\"\"")]);
        let args = Args::new(&r, 114, 120);
        assert_eq!(args.string("a"), Ok("x-1".into()));
        assert_eq!(args.string("b"), Ok("x-1".into()));
        assert_eq!(args.string("c"), Ok(String::new()));
        assert_eq!(args.string("d"), Err(114));
    }

    #[test]
    fn lists_in_every_form() {
        let r = req(&[
            ("ids", "[3, \"4\"]"),
            ("add", "vdisks"),
            ("add", "vnics"),
            ("one", "\"u\""),
            ("bad", "[{}]"),
        ]);
        let args = Args::new(&r, 114, 120);
        assert_eq!(args.opt_int_list("ids"), Ok(Some(vec![3, 4])));
        assert_eq!(
            args.opt_string_list("add"),
            Ok(Some(vec!["vdisks".into(), "vnics".into()]))
        );
        assert_eq!(args.opt_string_list("one"), Ok(Some(vec!["u".into()])));
        assert_eq!(args.opt_string_list("bad"), Err(120));
    }

    #[test]
    fn booleans_are_strict() {
        let r = req(&[("a", "true"), ("b", "maybe")]);
        let args = Args::new(&r, 114, 120);
        assert_eq!(args.opt_bool("a"), Ok(Some(true)));
        assert_eq!(args.opt_bool("b"), Err(120));
    }
}
