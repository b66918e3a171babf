//! `run --array-selector`: one deployment serves the StorageArrays whose
//! labels match a label selector, and the objects whose `spec.arrayRef`
//! names one of them. Objects of other arrays are left completely alone:
//! no status, no finalizer, no annotation, no Event, no array call.
//!
//! Every StorageArray is still watched (there are few, and the deletion
//! order needs them all: two shards' arrays may share a Secret, whose
//! finalizer must stay while either exists); selection is a local match of
//! each array's labels, checked at the start of every reconcile. So when a
//! StorageArray's labels move it to another shard, the old shard stops at
//! its next reconcile without removing anything (finalizers, array
//! objects, sessions aside: it logs out), and the new shard, which sees the
//! label change on its own watch, wakes the array's objects and carries on
//! from their recorded state.
//!
//! kube-core 5 has the selector types ([`Selector`], [`Expression`]) and
//! matching ([`SelectorExt`]) but no parser for the string form, so the
//! string form kubectl takes (`-l`) is parsed here into kube-core's types.

use std::collections::{BTreeMap, BTreeSet};

use kube::core::{Expression, Selector, SelectorExt};

/// Why an `--array-selector` was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("label selector {selector:?}: {problem}")]
pub struct SelectorError {
    /// The selector as given.
    pub selector: String,
    /// What is wrong with it.
    pub problem: String,
}

/// A parsed `--array-selector`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ArraySelector {
    text: String,
    selector: Selector,
}

impl std::fmt::Display for ArraySelector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::str::FromStr for ArraySelector {
    type Err = SelectorError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ArraySelector::parse(s)
    }
}

/// A label name: 63 characters at most, alphanumeric at both ends, `-`,
/// `_` and `.` between (Kubernetes' qualified name, without the prefix).
fn valid_name(s: &str) -> bool {
    let bytes = s.as_bytes();
    !s.is_empty()
        && s.len() <= 63
        && bytes[0].is_ascii_alphanumeric()
        && bytes[bytes.len() - 1].is_ascii_alphanumeric()
        && bytes
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// A DNS subdomain (a key's prefix): 253 characters at most, lowercase
/// alphanumeric labels separated by dots.
fn valid_prefix(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            let b = label.as_bytes();
            !b.is_empty()
                && b.len() <= 63
                && b[0].is_ascii_alphanumeric()
                && b[b.len() - 1].is_ascii_alphanumeric()
                && b.iter()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'-')
        })
}

fn check_key(key: &str) -> Result<String, String> {
    let ok = match key.split_once('/') {
        Some((prefix, name)) => valid_prefix(prefix) && valid_name(name),
        None => valid_name(key),
    };
    if ok {
        Ok(key.to_string())
    } else {
        Err(format!(
            "{key:?} is not a valid label key (an optional DNS prefix and '/', then at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ))
    }
}

fn check_value(value: &str) -> Result<String, String> {
    if value.is_empty() || valid_name(value) {
        Ok(value.to_string())
    } else {
        Err(format!(
            "{value:?} is not a valid label value (at most 63 characters: letters, digits, '-', '_', '.', starting and ending with a letter or digit)"
        ))
    }
}

/// Splits at the commas that are not inside parentheses.
fn requirements(s: &str) -> Result<Vec<&str>, String> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0usize, 0usize);
    for (i, c) in s.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => {
                depth = depth
                    .checked_sub(1)
                    .ok_or_else(|| "a ')' closes nothing".to_string())?;
            }
            ',' if depth == 0 => {
                parts.push(&s[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    if depth != 0 {
        return Err("a '(' is not closed".into());
    }
    parts.push(&s[start..]);
    Ok(parts)
}

fn set_expression(req: &str) -> Result<Expression, String> {
    let (head, rest) = req.split_once('(').unwrap_or((req, ""));
    let values = rest
        .strip_suffix(')')
        .ok_or_else(|| format!("{req:?}: nothing may follow the ')'"))?;
    let mut words = head.split_whitespace();
    let (Some(key), Some(op), None) = (words.next(), words.next(), words.next()) else {
        return Err(format!(
            "{req:?}: a set requirement reads `key in (a,b)` or `key notin (a,b)`"
        ));
    };
    let key = check_key(key)?;
    let values: BTreeSet<String> = values
        .split(',')
        .map(|v| check_value(v.trim()))
        .collect::<Result<_, _>>()?;
    if values.iter().all(String::is_empty) {
        return Err(format!("{req:?}: the set of values is empty"));
    }
    match op {
        "in" => Ok(Expression::In(key, values)),
        "notin" => Ok(Expression::NotIn(key, values)),
        other => Err(format!(
            "{req:?}: unknown operator {other:?} (in, notin, =, ==, != or none)"
        )),
    }
}

fn expression(req: &str) -> Result<Expression, String> {
    let req = req.trim();
    if req.is_empty() {
        return Err("an empty requirement (two commas in a row, or a trailing comma)".into());
    }
    if req.contains('(') {
        return set_expression(req);
    }
    for (op, not) in [("!=", true), ("==", false), ("=", false)] {
        if let Some((key, value)) = req.split_once(op) {
            let key = check_key(key.trim())?;
            let value = check_value(value.trim())?;
            return Ok(if not {
                Expression::NotEqual(key, value)
            } else {
                Expression::Equal(key, value)
            });
        }
    }
    match req.strip_prefix('!') {
        Some(key) => Ok(Expression::DoesNotExist(check_key(key.trim())?)),
        None => Ok(Expression::Exists(check_key(req)?)),
    }
}

impl ArraySelector {
    /// Parses the string form `kubectl get -l` takes: comma-separated
    /// requirements, each `key`, `!key`, `key=value`, `key==value`,
    /// `key!=value`, `key in (a,b)` or `key notin (a,b)`.
    pub fn parse(s: &str) -> Result<Self, SelectorError> {
        let error = |problem: String| SelectorError {
            selector: s.to_string(),
            problem,
        };
        if s.trim().is_empty() {
            return Err(error(
                "an empty selector selects every StorageArray; leave the flag out instead".into(),
            ));
        }
        let selector: Selector = requirements(s)
            .map_err(error)?
            .into_iter()
            .map(expression)
            .collect::<Result<Vec<_>, _>>()
            .map_err(error)?
            .into_iter()
            .collect();
        Ok(ArraySelector {
            text: s.trim().to_string(),
            selector,
        })
    }

    /// True when labels `labels` are selected.
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.matches(labels)
    }

    /// The selector in kube-core's form.
    pub fn selector(&self) -> &Selector {
        &self.selector
    }
}

/// Which StorageArrays a deployment serves: all, or those an
/// [`ArraySelector`] matches.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Shard {
    selector: Option<ArraySelector>,
}

impl Shard {
    /// Every StorageArray.
    pub fn all() -> Self {
        Shard::default()
    }

    /// The StorageArrays `selector` matches.
    pub fn selecting(selector: Option<ArraySelector>) -> Self {
        Shard { selector }
    }

    /// The selector, when the deployment has one.
    pub fn selector(&self) -> Option<&ArraySelector> {
        self.selector.as_ref()
    }

    /// True when a StorageArray with these labels belongs to this shard.
    pub fn serves_labels(&self, labels: &BTreeMap<String, String>) -> bool {
        self.selector.as_ref().is_none_or(|s| s.matches(labels))
    }

    /// True when a StorageArray (`None`: not known to exist) belongs to
    /// this shard. Without a selector, every array does, a missing one
    /// included (its objects say it is missing); with one, a missing array
    /// is no shard's, so its objects are left alone.
    pub fn serves(&self, array: Option<&crate::crd::StorageArray>) -> bool {
        match (&self.selector, array) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(s), Some(sa)) => {
                s.matches(sa.metadata.labels.as_ref().unwrap_or(&BTreeMap::new()))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn parse(s: &str) -> ArraySelector {
        ArraySelector::parse(s).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn every_form_kubectl_takes_is_parsed_into_kube_core_expressions() {
        let s = parse("shard=a, tier==gold,site!=lab,ha,!legacy,zone in (z1, z2),owner notin (x)");
        let want: Selector = [
            Expression::Equal("shard".into(), "a".into()),
            Expression::Equal("tier".into(), "gold".into()),
            Expression::NotEqual("site".into(), "lab".into()),
            Expression::Exists("ha".into()),
            Expression::DoesNotExist("legacy".into()),
            Expression::In("zone".into(), ["z1".into(), "z2".into()].into()),
            Expression::NotIn("owner".into(), ["x".into()].into()),
        ]
        .into_iter()
        .collect();
        assert_eq!(s.selector(), &want);
        assert_eq!(
            s.to_string(),
            "shard=a, tier==gold,site!=lab,ha,!legacy,zone in (z1, z2),owner notin (x)"
        );
    }

    #[test]
    fn matching_follows_kubernetes() {
        let s = parse("array-operator.io/shard in (a,b),!legacy");
        assert!(s.matches(&labels(&[("array-operator.io/shard", "a")])));
        assert!(s.matches(&labels(&[("array-operator.io/shard", "b"), ("x", "y")])));
        assert!(!s.matches(&labels(&[("array-operator.io/shard", "c")])));
        assert!(!s.matches(&labels(&[])));
        assert!(!s.matches(&labels(&[("array-operator.io/shard", "a"), ("legacy", "")])));
        // notin and != also select objects without the key.
        assert!(parse("shard!=a").matches(&labels(&[])));
        assert!(parse("shard notin (a)").matches(&labels(&[])));
    }

    #[test]
    fn a_malformed_selector_is_refused_naming_the_problem() {
        for (bad, says) in [
            ("", "leave the flag out"),
            ("  ", "leave the flag out"),
            ("shard=a,", "empty requirement"),
            ("shard in (a", "not closed"),
            ("shard in a)", "closes nothing"),
            ("shard in ()", "empty"),
            ("shard within (a)", "unknown operator"),
            ("shard in (a) x", "nothing may follow"),
            ("-shard=a", "not a valid label key"),
            ("shard=a b", "not a valid label value"),
            ("Example.com/shard=a", "not a valid label key"),
            ("shard=", ""),
        ] {
            match ArraySelector::parse(bad) {
                Err(e) => {
                    let text = e.to_string();
                    assert!(text.starts_with("label selector "), "{text}");
                    assert!(text.contains(says), "{bad:?}: {text}");
                }
                // `key=` (an empty value) is valid in Kubernetes.
                Ok(s) => assert_eq!(bad, "shard=", "{bad:?} was accepted as {s}"),
            }
        }
    }

    #[test]
    fn a_shard_without_a_selector_serves_every_array_even_a_missing_one() {
        let mut sa: crate::crd::StorageArray = serde_json::from_value(serde_json::json!({
            "apiVersion": "array-operator.io/v1alpha1", "kind": "StorageArray",
            "metadata": {"name": "dsm", "namespace": "ns", "labels": {"shard": "a"}},
            "spec": {"vendor": "Synology", "endpoint": "https://dsm:5001",
                     "credentialsSecretRef": {"name": "creds"}}
        }))
        .expect("array");
        assert!(Shard::all().serves(Some(&sa)));
        assert!(Shard::all().serves(None));
        let a = Shard::selecting(Some(parse("shard=a")));
        let b = Shard::selecting(Some(parse("shard=b")));
        assert!(a.serves(Some(&sa)) && !b.serves(Some(&sa)));
        assert!(!a.serves(None), "a missing array is no shard's");
        // Relabelled: it moves from shard a to shard b.
        sa.metadata.labels = Some(labels(&[("shard", "b")]));
        assert!(!a.serves(Some(&sa)) && b.serves(Some(&sa)));
    }
}
