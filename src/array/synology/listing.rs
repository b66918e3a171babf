//! List answers decoded one record at a time, so one malformed record is
//! reported on its own instead of failing the whole list.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::error::DsmError;

/// A DSM list answer (see [`crate::array::listing::Listing`]).
pub type Listing<T> = crate::array::listing::Listing<T, DsmError>;

/// One DSM list record that did not decode.
pub type Malformed = crate::array::listing::Malformed<DsmError>;

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
