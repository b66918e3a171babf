//! The simulated DSM's LUNs: a list in creation order, as DSM lists them,
//! with an index by name and uuid, so that a create's "name taken" check
//! and a map's uuid look-ups do not scan every LUN (a 10,000-LUN array
//! would otherwise answer in quadratic time).
//!
//! Reads go through `Deref` to the list. `push` and `retain` keep the
//! index; any other change through `DerefMut` (an `iter_mut`, say) may
//! rename a LUN, so it drops the index, which the next look-up rebuilds.

use std::cell::RefCell;
use std::collections::HashMap;
use std::ops::{Deref, DerefMut};

use super::state::SimLun;

#[derive(Clone, Debug, Default)]
struct Index {
    /// The uuid of the first LUN of each name.
    by_name: HashMap<String, String>,
    /// The sequence number of each uuid.
    by_uuid: HashMap<String, u64>,
    /// The sequence number of each LUN, aligned with the list: ascending,
    /// since LUNs are only appended, so a position is a binary search
    /// away, and a removal renumbers nothing.
    seqs: Vec<u64>,
    /// The next sequence number.
    next: u64,
}

impl Index {
    fn add(&mut self, lun: &SimLun) {
        let seq = self.next;
        self.next += 1;
        self.seqs.push(seq);
        self.by_name
            .entry(lun.name.clone())
            .or_insert_with(|| lun.uuid.clone());
        self.by_uuid.entry(lun.uuid.clone()).or_insert(seq);
    }

    fn position(&self, uuid: &str) -> Option<usize> {
        let seq = self.by_uuid.get(uuid)?;
        self.seqs.binary_search(seq).ok()
    }
}

/// The LUNs, in creation order, indexed by name and uuid.
#[derive(Clone, Debug, Default)]
pub struct LunTable {
    items: Vec<SimLun>,
    /// `None` after a change the index could not follow.
    index: RefCell<Option<Index>>,
}

impl LunTable {
    fn with_index<R>(&self, f: impl FnOnce(&Index) -> R) -> R {
        let mut index = self.index.borrow_mut();
        let index = index.get_or_insert_with(|| {
            let mut i = Index::default();
            for lun in &self.items {
                i.add(lun);
            }
            i
        });
        f(index)
    }

    /// The first LUN of this name.
    pub fn by_name(&self, name: &str) -> Option<&SimLun> {
        let pos = self.with_index(|i| i.by_name.get(name).and_then(|u| i.position(u)))?;
        self.items.get(pos).filter(|l| l.name == name)
    }

    /// The LUN with this uuid.
    pub fn by_uuid(&self, uuid: &str) -> Option<&SimLun> {
        let pos = self.with_index(|i| i.position(uuid))?;
        self.items.get(pos).filter(|l| l.uuid == uuid)
    }

    /// Adds a LUN at the end.
    pub fn push(&mut self, lun: SimLun) {
        if let Some(i) = self.index.get_mut() {
            i.add(&lun);
        }
        self.items.push(lun);
    }

    /// Keeps the LUNs `keep` accepts. The index follows: the removed LUNs
    /// leave it and the sequence numbers of the others stay (a delete of
    /// one LUN in 10,000 neither rebuilds nor renumbers the index).
    pub fn retain(&mut self, mut keep: impl FnMut(&SimLun) -> bool) {
        let mut kept = Vec::with_capacity(self.items.len());
        let mut removed: Vec<(String, String)> = Vec::new();
        self.items.retain(|l| {
            let k = keep(l);
            kept.push(k);
            if !k {
                removed.push((l.name.clone(), l.uuid.clone()));
            }
            k
        });
        if removed.is_empty() {
            return;
        }
        let Some(index) = self.index.get_mut().as_mut() else {
            return;
        };
        let mut flags = kept.into_iter();
        index.seqs.retain(|_| flags.next().unwrap_or(true));
        for (name, uuid) in &removed {
            index.by_uuid.remove(uuid);
            // Names are unique here (DSM refuses a second LUN of a name on
            // create, clone and rename), so the removed LUN shadowed none.
            if index.by_name.get(name) == Some(uuid) {
                index.by_name.remove(name);
            }
        }
    }
}

impl Deref for LunTable {
    type Target = Vec<SimLun>;
    fn deref(&self) -> &Vec<SimLun> {
        &self.items
    }
}

impl DerefMut for LunTable {
    fn deref_mut(&mut self) -> &mut Vec<SimLun> {
        *self.index.get_mut() = None;
        &mut self.items
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lun(uuid: &str, name: &str) -> SimLun {
        SimLun {
            uuid: uuid.into(),
            lun_id: 0,
            name: name.into(),
            location: "/volume1".into(),
            size: 1 << 30,
            lun_type: "THIN".into(),
            allocated_size: 0,
            description: String::new(),
            dev_attribs: Vec::new(),
            parent_uuid: None,
        }
    }

    #[test]
    fn look_ups_follow_pushes_renames_and_removals() {
        let mut t = LunTable::default();
        t.push(lun("u1", "a"));
        t.push(lun("u2", "b"));
        assert_eq!(t.by_name("b").map(|l| l.uuid.as_str()), Some("u2"));
        t.push(lun("u3", "c"));
        assert_eq!(t.by_uuid("u3").map(|l| l.name.as_str()), Some("c"));
        // A rename through the list is seen.
        if let Some(l) = t.iter_mut().find(|l| l.uuid == "u2") {
            l.name = "bb".into();
        }
        assert!(t.by_name("b").is_none());
        assert_eq!(t.by_name("bb").map(|l| l.uuid.as_str()), Some("u2"));
        // Removal moves positions; the index follows without a rebuild.
        t.retain(|l| l.uuid != "u1");
        assert!(t.by_uuid("u1").is_none());
        assert!(t.by_name("a").is_none());
        assert_eq!(t.by_uuid("u3").map(|l| l.name.as_str()), Some("c"));
        assert_eq!(t.by_name("bb").map(|l| l.uuid.as_str()), Some("u2"));
        assert_eq!(t.len(), 2);
        t.push(lun("u4", "a"));
        t.retain(|l| l.uuid != "u2");
        assert_eq!(t.by_name("c").map(|l| l.uuid.as_str()), Some("u3"));
        assert_eq!(t.by_name("a").map(|l| l.uuid.as_str()), Some("u4"));
        assert_eq!(t.by_uuid("u4").map(|l| l.name.as_str()), Some("a"));
    }
}
