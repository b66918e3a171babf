//! The state a fresh simulator starts from (documented in the module docs of
//! `crate::sim::ngx`).

use super::state::{ArrayState, SimAuthGroup, SimPool, SimPortalGroup};

/// `pool1`'s id.
pub const POOL1_ID: &str = "b42ecdf4c9a0e6677546fb4da04b0ebede0476e5";
/// `pool2`'s id.
pub const POOL2_ID: &str = "158958043cc29b0eaf226fee5060ede83e92eceb";
/// The portal group's id.
pub const PORTAL_GROUP_ID: &str = "84904f58234656a66ede2075a38596003bb0013c";
/// The default auth group's id (the document's "1").
pub const DEFAULT_AUTH_GROUP_ID: &str = "1";
/// `pool1`: 10 TiB.
pub const POOL1_BYTES: u64 = 10 << 40;
/// `pool2`: 2 TiB.
pub const POOL2_BYTES: u64 = 2 << 40;

/// The seed for a controller pair tagged `tag` (`<tag>_A` / `<tag>_B`).
pub fn seed(tag: &str) -> ArrayState {
    let owner_a = format!("{tag}_A");
    let mut state = ArrayState::default();
    state.service_tag = tag.to_string();
    for (id, name, bytes, flash) in [
        (POOL1_ID, "pool1", POOL1_BYTES, true),
        (POOL2_ID, "pool2", POOL2_BYTES, false),
    ] {
        state.pools.insert(
            id.to_string(),
            SimPool {
                id: id.to_string(),
                name: name.to_string(),
                owner: owner_a.clone(),
                total_bytes: bytes,
                is_flash: flash,
            },
        );
    }
    state.auth_groups.insert(
        DEFAULT_AUTH_GROUP_ID.to_string(),
        SimAuthGroup {
            id: DEFAULT_AUTH_GROUP_ID.to_string(),
            name: "DefaultAuthGroup".to_string(),
            owner: None,
            chap: None,
            initiators: Vec::new(),
        },
    );
    state.portal_groups.insert(
        PORTAL_GROUP_ID.to_string(),
        SimPortalGroup {
            id: PORTAL_GROUP_ID.to_string(),
            name: "pg1".to_string(),
            owner: owner_a,
            listen_ips: vec!["127.0.0.1".to_string()],
        },
    );
    state
}
