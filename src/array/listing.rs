//! List answers decoded one record at a time, so one malformed record is
//! reported on its own instead of failing the whole list. Shared by both
//! vendor clients; each names its own error type.

/// A list answer: the records that decoded, and the ones that did not.
#[derive(Debug)]
pub struct Listing<T, E> {
    /// Records that decoded, in the array's order.
    pub items: Vec<T>,
    /// Records that did not, each with its position and, when it could be
    /// read, its id.
    pub malformed: Vec<Malformed<E>>,
}

/// One record of a list that did not decode.
#[derive(Debug)]
pub struct Malformed<E> {
    /// Position in the answer, from 0.
    pub index: usize,
    /// The record's id, when that field at least could be read; the engine
    /// fails the object with this id alone.
    pub id: Option<String>,
    /// What was wrong, naming the field and the call.
    pub error: E,
}

impl<T, E> Listing<T, E> {
    /// All records, or the first malformed one's error: for callers that
    /// must not act on a partial view (a record that does not decode could
    /// be the very object they look for).
    pub fn into_strict(self) -> Result<Vec<T>, E> {
        match self.malformed.into_iter().next() {
            Some(m) => Err(m.error),
            None => Ok(self.items),
        }
    }
}
