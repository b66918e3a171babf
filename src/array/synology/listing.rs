//! List answers decoded one record at a time, so one malformed record is
//! reported on its own instead of failing the whole list.

use std::collections::BTreeMap;

use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;

use super::error::DsmError;

/// A DSM list answer (see [`crate::array::listing::Listing`]).
pub type Listing<T> = crate::array::listing::Listing<T, DsmError>;

/// One DSM list record that did not decode.
pub type Malformed = crate::array::listing::Malformed<DsmError>;

/// Decodes `data[key]` record by record, from the raw answer: the answer
/// is split into records without a JSON tree of the whole of it, so a
/// 10,000-LUN list costs its text and its records, not a tree several times
/// the text. A missing list is empty (DSM omits it when there is nothing);
/// a list that is not an array is an error.
pub(crate) fn decode_each<T: DeserializeOwned>(
    api_call: &str,
    subject: &str,
    data: &RawValue,
    key: &str,
    id_key: &str,
) -> Result<Listing<T>, DsmError> {
    let decode_err = |detail: String| DsmError::Decode {
        api_call: api_call.to_string(),
        subject: subject.to_string(),
        detail,
    };
    let fields: BTreeMap<String, &RawValue> =
        serde_json::from_str(data.get()).map_err(|e| decode_err(e.to_string()))?;
    let records: Vec<&RawValue> = match fields.get(key) {
        None => Vec::new(),
        Some(list) if list.get().trim() == "null" => Vec::new(),
        Some(list) => serde_json::from_str(list.get()).map_err(|_| {
            decode_err(format!(
                "field `{key}` is not a list (got {})",
                list.get().chars().take(60).collect::<String>()
            ))
        })?,
    };
    let mut listing = Listing {
        items: Vec::with_capacity(records.len()),
        malformed: Vec::new(),
    };
    for (index, record) in records.iter().enumerate() {
        match serde_json::from_str::<T>(record.get()) {
            Ok(item) => listing.items.push(item),
            Err(e) => {
                // Only a record that failed is read as a tree, for its id.
                let tree: Value = serde_json::from_str(record.get()).unwrap_or(Value::Null);
                let id = match tree.get(id_key) {
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
                    error: decode_err(format!("{which}: {e}")),
                });
            }
        }
    }
    Ok(listing)
}
