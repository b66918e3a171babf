//! List answers decoded one record at a time, so one malformed record is
//! reported on its own instead of failing the whole list.

use serde_json::Value;

use super::client::NgxClient;
use super::dialect::{Dialect, Endpoint, Field};
use super::error::NgxError;
use super::types::Rec;

/// A NGX list answer (see [`crate::array::listing::Listing`]).
pub type Listing<T> = crate::array::listing::Listing<T, NgxError>;

/// One NGX list record that did not decode.
pub type Malformed = crate::array::listing::Malformed<NgxError>;

/// The items of a list answer: a bare array, or an object wrapping one in
/// `data`, `luns` or `items`. Anything else is an error, never an empty
/// list: an empty list read from an error page would make every object look
/// gone.
pub(crate) fn items<'a>(
    client: &NgxClient,
    endpoint: Endpoint,
    v: &'a Value,
) -> Result<&'a [Value], NgxError> {
    match v {
        Value::Array(items) => Ok(items),
        Value::Object(o) => ["data", "luns", "items"]
            .iter()
            .find_map(|k| o.get(*k).and_then(Value::as_array))
            .map(Vec::as_slice)
            .ok_or_else(|| decode_error(client, endpoint, "expected a list (a JSON array)".into())),
        _ => Err(decode_error(
            client,
            endpoint,
            "expected a list (a JSON array)".into(),
        )),
    }
}

/// A [`NgxError::Decode`] for `endpoint` in the client's dialect.
pub(crate) fn decode_error(client: &NgxClient, endpoint: Endpoint, detail: String) -> NgxError {
    let (m, p) = endpoint.route(client.dialect());
    NgxError::Decode {
        api_call: format!("{} /{}", m.as_str(), p),
        detail,
    }
}

/// Decodes each record of `records` on its own.
pub(crate) fn decode_each<T>(
    client: &NgxClient,
    endpoint: Endpoint,
    records: &[Value],
    id_field: Field,
    decode: impl Fn(&Value, Dialect) -> Result<T, String>,
) -> Listing<T> {
    let d = client.dialect();
    let mut listing = Listing {
        items: Vec::with_capacity(records.len()),
        malformed: Vec::new(),
    };
    for (index, record) in records.iter().enumerate() {
        match decode(record, d) {
            Ok(item) => listing.items.push(item),
            Err(e) => {
                let id = Rec::new(record, d).str(id_field);
                let which = match &id {
                    Some(id) => format!("record {index} (id {id})"),
                    None => format!("record {index}"),
                };
                listing.malformed.push(Malformed {
                    index,
                    id,
                    error: decode_error(client, endpoint, format!("{which}: {e}")),
                });
            }
        }
    }
    listing
}

/// Calls a list endpoint and decodes it record by record.
pub(crate) async fn fetch<T>(
    client: &NgxClient,
    endpoint: Endpoint,
    query: &[(String, String)],
    id_field: Field,
    decode: impl Fn(&Value, Dialect) -> Result<T, String>,
) -> Result<Listing<T>, NgxError> {
    let v = client.call(endpoint, None, query, None).await?;
    let records = items(client, endpoint, &v)?;
    Ok(decode_each(client, endpoint, records, id_field, decode))
}
