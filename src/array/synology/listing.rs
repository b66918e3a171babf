//! List answers decoded one record at a time, so one malformed record is
//! reported on its own instead of failing the whole list.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::DsmError;

/// A list answer: the records that decoded, and the ones that did not.
#[derive(Debug)]
pub struct Listing<T> {
    /// Records that decoded, in the DSM's order.
    pub items: Vec<T>,
    /// Records that did not, each with its position and, when it could be
    /// read, its id.
    pub malformed: Vec<Malformed>,
}

/// One record of a list that did not decode.
#[derive(Debug)]
pub struct Malformed {
    /// Position in the answer, from 0.
    pub index: usize,
    /// The record's id (LUN `uuid`, target `target_id`), when that field at
    /// least could be read; the engine fails the object with this id alone.
    pub id: Option<String>,
    /// What was wrong, naming the call ([`DsmError::Decode`]).
    pub error: DsmError,
}

impl<T> Listing<T> {
    /// All records, or the first malformed one's error: for callers that
    /// must not act on a partial view.
    pub fn into_strict(self) -> Result<Vec<T>, DsmError> {
        match self.malformed.into_iter().next() {
            Some(m) => Err(m.error),
            None => Ok(self.items),
        }
    }
}

/// Decodes `data[key]` record by record. A missing list is empty (DSM
/// omits it when there is nothing); a list that is not an array is an error.
pub(crate) fn decode_each<T: DeserializeOwned>(
    api_call: &str,
    subject: &str,
    data: &Value,
    key: &str,
    id_key: &str,
) -> Result<Listing<T>, DsmError> {
    let records = match data.get(key) {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(items)) => items.as_slice(),
        Some(other) => {
            return Err(DsmError::Decode {
                api_call: api_call.to_string(),
                subject: subject.to_string(),
                detail: format!(
                    "field `{key}` is not a list (got {})",
                    other.to_string().chars().take(60).collect::<String>()
                ),
            });
        }
    };
    let mut listing = Listing {
        items: Vec::with_capacity(records.len()),
        malformed: Vec::new(),
    };
    for (index, record) in records.iter().enumerate() {
        match T::deserialize(record) {
            Ok(item) => listing.items.push(item),
            Err(e) => {
                let id = match record.get(id_key) {
                    Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
                    Some(Value::Number(n)) => Some(n.to_string()),
                    _ => None,
                };
                let which = match &id {
                    Some(id) => format!("record {index} ({id_key} {id})"),
                    None => format!("record {index}"),
                };
                listing.malformed.push(Malformed {
                    index,
                    id,
                    error: DsmError::Decode {
                        api_call: api_call.to_string(),
                        subject: subject.to_string(),
                        detail: format!("{which}: {e}"),
                    },
                });
            }
        }
    }
    Ok(listing)
}
