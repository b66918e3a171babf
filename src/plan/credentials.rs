//! Credentials named on the command line: `--credentials ARRAY=SOURCE`,
//! where `ARRAY` is a StorageArray's `name` or `namespace/name` and
//! `SOURCE` is `env:VARIABLE` or `file:PATH`. The value reads as the
//! StorageArray's credentials Secret would: lines `KEY=VALUE` with the
//! Secret's keys (`username` and `password` for Synology, `token` for
//! NGXStorage); a value without `=` on its first line is a bare NGXStorage
//! token. It takes the place of the Secret `spec.credentialsSecretRef`
//! names, so a plan needs no Secret manifest in the repository.
//!
//! Values never reach the output, logs or errors: errors name the source,
//! never what it holds.

use std::collections::BTreeMap;
use std::path::PathBuf;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;

/// Where one array's credentials come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialSource {
    /// `name` or `namespace/name` of the StorageArray.
    pub array: String,
    /// The source.
    pub from: From,
}

/// A credentials source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum From {
    /// An environment variable.
    Env(String),
    /// A file.
    File(PathBuf),
}

/// A `--credentials` value or source that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CredentialError {
    /// The flag is not `ARRAY=env:VAR` or `ARRAY=file:PATH`.
    #[error("--credentials {0:?}: expected ARRAY=env:VARIABLE or ARRAY=file:PATH")]
    Syntax(String),
    /// The variable is unset or not UTF-8.
    #[error("--credentials for {array}: environment variable {variable} is not set")]
    Env {
        /// The array.
        array: String,
        /// The variable.
        variable: String,
    },
    /// The file cannot be read.
    #[error("--credentials for {array}: reading {path}: {problem}")]
    File {
        /// The array.
        array: String,
        /// The file.
        path: PathBuf,
        /// The OS error.
        problem: String,
    },
    /// A line is not `KEY=VALUE`.
    #[error("--credentials for {array}: line {line} of {source_name} is not KEY=VALUE")]
    Line {
        /// The array.
        array: String,
        /// The source (`env:VAR` or `file:PATH`).
        source_name: String,
        /// The line, from 1 (its text is not repeated: it may be a secret).
        line: usize,
    },
}

impl std::str::FromStr for CredentialSource {
    type Err = CredentialError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let syntax = || CredentialError::Syntax(s.to_string());
        let (array, source) = s.split_once('=').ok_or_else(syntax)?;
        if array.is_empty() {
            return Err(syntax());
        }
        let from = if let Some(v) = source.strip_prefix("env:") {
            From::Env(v.to_string())
        } else if let Some(p) = source.strip_prefix("file:") {
            From::File(PathBuf::from(p))
        } else {
            return Err(syntax());
        };
        if matches!(&from, From::Env(v) if v.is_empty())
            || matches!(&from, From::File(p) if p.as_os_str().is_empty())
        {
            return Err(syntax());
        }
        Ok(CredentialSource {
            array: array.to_string(),
            from,
        })
    }
}

impl CredentialSource {
    /// True when this flag is for StorageArray `namespace/name`.
    pub fn names(&self, namespace: &str, name: &str) -> bool {
        self.array == name || self.array == format!("{namespace}/{name}")
    }

    fn source_name(&self) -> String {
        match &self.from {
            From::Env(v) => format!("env:{v}"),
            From::File(p) => format!("file:{}", p.display()),
        }
    }

    /// Reads the source into a Secret's data.
    pub fn read(&self) -> Result<Secret, CredentialError> {
        let text = match &self.from {
            From::Env(v) => std::env::var(v).map_err(|_| CredentialError::Env {
                array: self.array.clone(),
                variable: v.clone(),
            })?,
            From::File(p) => std::fs::read_to_string(p).map_err(|e| CredentialError::File {
                array: self.array.clone(),
                path: p.clone(),
                problem: e.kind().to_string(),
            })?,
        };
        let mut data = BTreeMap::new();
        let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
        if !first.contains('=') {
            // A bare token, as `kubectl create secret --from-file=token`
            // would hold it.
            data.insert(
                "token".to_string(),
                ByteString(text.trim_end_matches(['\n', '\r']).as_bytes().to_vec()),
            );
        } else {
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() || line.trim_start().starts_with('#') {
                    continue;
                }
                let (k, v) = line.split_once('=').ok_or_else(|| CredentialError::Line {
                    array: self.array.clone(),
                    source_name: self.source_name(),
                    line: i + 1,
                })?;
                data.insert(k.trim().to_string(), ByteString(v.as_bytes().to_vec()));
            }
        }
        Ok(Secret {
            data: Some(data),
            ..Secret::default()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_and_bad_ones_are_named() {
        let c: CredentialSource = "dsm1=env:DSM1".parse().expect("env");
        assert_eq!(c.from, From::Env("DSM1".into()));
        assert!(c.names("default", "dsm1") && !c.names("default", "dsm2"));
        let c: CredentialSource = "prod/ngx1=file:/run/token".parse().expect("file");
        assert!(c.names("prod", "ngx1") && !c.names("default", "ngx1"));
        for bad in ["dsm1", "=env:X", "dsm1=env:", "dsm1=vault:x"] {
            assert!(bad.parse::<CredentialSource>().is_err(), "{bad}");
        }
    }

    #[test]
    fn a_file_of_keys_and_a_bare_token_read_as_secret_data() {
        let dir = std::env::temp_dir().join(format!("plan-creds-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let keys = dir.join("dsm");
        std::fs::write(&keys, "username=admin\npassword=p=w\n").expect("write");
        let token = dir.join("ngx");
        std::fs::write(&token, "tok-123\n").expect("write");
        let s = CredentialSource {
            array: "dsm1".into(),
            from: From::File(keys),
        }
        .read()
        .expect("reads");
        let data = s.data.expect("data");
        assert_eq!(data["password"].0, b"p=w".to_vec());
        assert_eq!(data["username"].0, b"admin".to_vec());
        let s = CredentialSource {
            array: "ngx1".into(),
            from: From::File(token),
        }
        .read()
        .expect("reads");
        assert_eq!(s.data.expect("data")["token"].0, b"tok-123".to_vec());
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_bad_line_is_named_by_number_not_text() {
        let dir = std::env::temp_dir().join(format!("plan-creds-bad-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let f = dir.join("c");
        std::fs::write(&f, "username=a\nsecret-without-equals\n").expect("write");
        let err = CredentialSource {
            array: "dsm1".into(),
            from: From::File(f),
        }
        .read()
        .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("line 2") && !text.contains("secret-without"),
            "{text}"
        );
        let _ = std::fs::remove_dir_all(&dir);
    }
}
