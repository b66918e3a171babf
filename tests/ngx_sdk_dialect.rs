//! The simulator's sdk dialect against what the vendor's Go SDK
//! (`NGXStorage/ngxstorage-sdk-go`, `pkg/ngxstorage/`) sends and decodes.
//!
//! Every request below is written by hand from the SDK's sources (the file
//! and commit are cited at each step); no SDK code is copied. Each answer is
//! checked the way Go's `encoding/json` would decode it into the SDK's
//! types (`types.go@2a0a706d`): a Go `string` field refuses a JSON number,
//! a Go `bool` refuses anything but a boolean, the SDK's `FlexBytes` /
//! `FlexOnOff` / `FlexBool` take a number or a string, extra fields are
//! ignored, and a list type needs a JSON array.
//!
//! One stateful scenario walks every call the issue reported broken
//! (items 1-7 of issue 11) in the order a CSI driver would make them.

#[path = "ngx_support/mod.rs"]
mod support;

use array_operator::array::ngxstorage::Dialect;
use array_operator::sim::ngx::NgxSim;
use serde_json::{Value, json};
use support::{GIB, TOKEN, config, sim};

/// How Go decodes a JSON value into one SDK field type.
#[derive(Clone, Copy, Debug)]
enum Go {
    /// Go `string`: a string (or null).
    Str,
    /// Go `bool`: a boolean (or null).
    Bool,
    /// Go `int`: a whole number (or null).
    Int,
    /// The SDK's FlexBytes, FlexOnOff, FlexBool (json.go, types.go):
    /// a number, a string or a boolean.
    Flex,
    /// `map[string]string`: an object of strings or nulls.
    StrMap,
    /// A slice: an array (or null).
    List,
    /// `map[string]interface{}`: an object.
    Object,
}

fn decodes(v: &Value, go: Go) -> bool {
    match (go, v) {
        (_, Value::Null) => true,
        (Go::Str, Value::String(_)) => true,
        (Go::Bool, Value::Bool(_)) => true,
        (Go::Int, Value::Number(n)) => n.is_i64() || n.is_u64(),
        (Go::Flex, Value::Number(_) | Value::String(_) | Value::Bool(_)) => true,
        (Go::StrMap, Value::Object(o)) => o.values().all(|x| x.is_string() || x.is_null()),
        (Go::List, Value::Array(_)) => true,
        (Go::Object, Value::Object(_)) => true,
        _ => false,
    }
}

/// Asserts `record` decodes into an SDK type with these fields, and that
/// the `required` ones are present (the SDK reads them).
fn assert_type(what: &str, record: &Value, fields: &[(&str, Go)], required: &[&str]) {
    let object = record
        .as_object()
        .unwrap_or_else(|| panic!("{what}: not an object: {record}"));
    for (name, go) in fields {
        if let Some(v) = object.get(*name) {
            assert!(
                decodes(v, *go),
                "{what}: field `{name}` = {v} does not decode into Go {go:?}"
            );
        }
    }
    for name in required {
        assert!(
            object.contains_key(*name),
            "{what}: the SDK reads `{name}`, missing in {record}"
        );
    }
}

/// types.go@2a0a706d `LUN`.
const LUN: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("size", Go::Flex),
    ("used", Go::Flex),
    ("scsi_id", Go::Str),
    ("blocksize", Go::Str),
    ("thin_provision", Go::Flex),
    ("deduplication", Go::Flex),
    ("compression", Go::Flex),
    ("compress_ratio", Go::Str),
    ("dram_cache", Go::Flex),
    ("flash_cache", Go::Flex),
    ("io_type", Go::Str),
    ("qos_priority", Go::Flex),
    ("clone", Go::Str),
    ("sizebysnapshots", Go::Flex),
    ("owner", Go::Str),
    ("pool_name", Go::Str),
    ("created", Go::Flex),
    ("protocols", Go::StrMap),
];

/// types.go@2a0a706d `Snapshot` (its UnmarshalJSON reads the same keys).
const SNAPSHOT: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("volume_id", Go::Str),
    ("volume_name", Go::Str),
    ("pool_name", Go::Str),
    ("path", Go::Str),
    ("volume_type", Go::Str),
    ("reserved", Go::Str),
    ("created", Go::Str),
];

/// types.go@2a0a706d `ISCSITarget` (luns[] checked on their own).
const TARGET: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("owner", Go::Str),
    ("target_iqn", Go::Str),
    ("auth_group_id", Go::Str),
    ("portal_group_id", Go::Str),
    ("luns", Go::List),
];

/// `ISCSITarget.Luns[]`: `number` is a Go string.
const TARGET_LUN: &[(&str, Go)] = &[("id", Go::Str), ("name", Go::Str), ("number", Go::Str)];

/// types.go@2a0a706d `SnapshotSchedule`.
const SCHEDULE: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("volume_id", Go::Str),
    ("volume_name", Go::Str),
    ("interval", Go::Str),
    ("retention", Go::Str),
    ("enabled", Go::Bool),
    ("next_run", Go::Str),
];

/// types.go@2a0a706d `Pool` (is_flash: a boolean or 0/1).
const POOL: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("owner", Go::Str),
    ("is_flash", Go::Flex),
    ("blocksize", Go::Str),
];

/// types.go@2a0a706d `AuthGroup`.
const AUTH_GROUP: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("chap_status", Go::Flex),
    ("initiator", Go::List),
];

/// types.go@2a0a706d `PortalGroup`.
const PORTAL_GROUP: &[(&str, Go)] = &[
    ("id", Go::Str),
    ("name", Go::Str),
    ("owner", Go::Str),
    ("listen_ips", Go::List),
];

/// types.go@2a0a706d `ClusterStatus`.
const CLUSTER: &[(&str, Go)] = &[
    ("connected", Go::Int),
    ("status", Go::Str),
    ("peers", Go::List),
];

struct Sdk {
    http: reqwest::Client,
    base: String,
    owner: String,
}

impl Sdk {
    fn new(sim: &NgxSim) -> Self {
        let transport = config(sim).transport;
        let http = reqwest::Client::builder()
            .tls_backend_preconfigured(
                array_operator::array::transport::rustls_client_config(&transport).expect("tls"),
            )
            .build()
            .expect("client");
        Sdk {
            http,
            base: format!("{}/api/v2/", sim.base_url()),
            owner: sim.owners()[0].clone(),
        }
    }

    /// One request as transport.go sends it: bearer token, JSON content
    /// type, a JSON body when there is one. Returns the status and the body.
    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(TOKEN)
            .header("Content-Type", "application/json");
        if let Some(b) = body {
            req = req.body(b.to_string());
        }
        let resp = req.send().await.expect("send");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        (status, serde_json::from_str(&text).unwrap_or(Value::Null))
    }

    /// A call the SDK treats as success: HTTP 2xx and no error code.
    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, v) = self.send(method, path, body).await;
        let code = v.get("code").and_then(Value::as_i64).unwrap_or(0);
        assert!(
            status < 400 && code == 0,
            "{method} {path}: the SDK gets HTTP {status} {v}"
        );
        v
    }
}

fn list(what: &str, v: &Value) -> Vec<Value> {
    v.as_array()
        .unwrap_or_else(|| panic!("{what}: the SDK decodes a JSON array, got {v}"))
        .clone()
}

#[tokio::test]
async fn the_sdk_works_end_to_end_against_the_sdk_dialect() {
    let sim = sim(Dialect::Sdk).await;
    let sdk = Sdk::new(&sim);
    let owner = sdk.owner.clone();

    // status.go@7db4426a Status().Cluster.
    let cluster = sdk.ok("GET", "status/cluster", None).await;
    assert_type("ClusterStatus", &cluster, CLUSTER, &["connected", "status"]);

    // pool.go@7db4426a List, ListDetail (item 3: pool/list), Get, Overview
    // (item 7: decoded as an object).
    let pools = list("Pools.List", &sdk.ok("GET", "pool", None).await);
    for p in &pools {
        assert_type("Pool", p, POOL, &["id", "name"]);
    }
    let detailed = list("Pools.ListDetail", &sdk.ok("GET", "pool/list", None).await);
    assert_eq!(detailed.len(), pools.len());
    for p in &detailed {
        assert_type("Pool", p, POOL, &["id", "name"]);
    }
    let pool_id = pools[0]["id"].as_str().expect("pool id").to_string();
    let one = sdk.ok("GET", &format!("pool/{pool_id}"), None).await;
    assert_type("Pool", &one, POOL, &["id", "name"]);
    let overview = sdk.ok("GET", "pool/overview", None).await;
    assert!(
        decodes(&overview, Go::Object),
        "Pools.Overview decodes an object: {overview}"
    );
    // pool.go@7db4426a GetConfiguredCapacity: [{name, logical{available, reserved}}].
    let capacity = list("Capacity", &sdk.ok("GET", "status/capacity", None).await);
    assert!(
        capacity
            .iter()
            .any(|p| p["name"] == "pool1" && p["logical"]["available"].is_number())
    );

    // Item 4: status.go@7db4426a (objects) and Enclosures, OverloadedVolumes
    // (arrays).
    for path in [
        "status/services",
        "status/iops",
        "status/bandwidth",
        "status/cache",
        "status/cpu",
        "status/license",
        "info/system",
    ] {
        let v = sdk.ok("GET", path, None).await;
        assert!(decodes(&v, Go::Object), "{path}: not an object: {v}");
    }
    for path in ["status/enclosures", "status/overloaded_volumes"] {
        list(path, &sdk.ok("GET", path, None).await);
    }

    // lun.go@4cbe64a6 Create: POST lun/ with a trailing slash, whole GB,
    // sing G, the caller's owner.
    let created = sdk
        .ok(
            "POST",
            "lun/",
            Some(json!({"pool_name": "pool1", "name": "vol1", "size": 1, "sing": "G", "owner": owner})),
        )
        .await;
    let first = &list("create LUN luns", &created["luns"])[0];
    assert_type("LUN", first, LUN, &["id"]);
    let lun_id = first["id"].as_str().expect("LUN id").to_string();

    // Item 6: the LUN record carries the SDK's names.
    let lun = sdk.ok("GET", &format!("lun/{lun_id}"), None).await;
    assert_type(
        "LUN",
        &lun,
        LUN,
        &[
            "id",
            "name",
            "size",
            "thin_provision",
            "deduplication",
            "compression",
            "created",
        ],
    );
    for l in list("LUNs.List", &sdk.ok("GET", "lun/list", None).await) {
        assert_type("LUN", &l, LUN, &["id", "name", "size"]);
    }

    // lun.go@4cbe64a6 Expand: size is the increment
    // (client_test.go TestLUNExpandSendsAdditiveIncrement).
    sdk.ok(
        "PATCH",
        &format!("lun/{lun_id}"),
        Some(json!({"size": 1, "sing": "G"})),
    )
    .await;
    let grown = sdk.ok("GET", &format!("lun/{lun_id}"), None).await;
    assert_eq!(grown["size"].as_u64(), Some(2 * GIB));

    // Item 7: portalgroup.go@4cbe64a6 Create {name, owner} and Delete.
    let portals = list(
        "PortalGroups.List",
        &sdk.ok("GET", "portal_group", None).await,
    );
    for p in &portals {
        assert_type("PortalGroup", p, PORTAL_GROUP, &["id", "name"]);
    }
    let portal_id = portals[0]["id"].as_str().expect("portal id").to_string();
    sdk.ok(
        "POST",
        "portal_group",
        Some(json!({"name": "pgsdk", "owner": owner})),
    )
    .await;
    let made = list(
        "PortalGroups.List",
        &sdk.ok("GET", "portal_group", None).await,
    )
    .into_iter()
    .find(|p| p["name"] == "pgsdk")
    .expect("the new portal group is listed");
    let made_id = made["id"].as_str().expect("id").to_string();
    sdk.ok("DELETE", &format!("portal_group/{made_id}"), None)
        .await;

    // authgroup.go@4cbe64a6: Create {name, owner}; item 7: AddCHAP without
    // owner.
    let group = sdk
        .ok(
            "POST",
            "auth_group",
            Some(json!({"name": "sdkgroup", "owner": owner})),
        )
        .await;
    let group_id = group["id"].as_str().expect("group id").to_string();
    sdk.ok(
        "PATCH",
        &format!("auth_group/chap/{group_id}"),
        Some(json!({"username": "chapuser", "password": "chap-secret-123"})),
    )
    .await;
    let g = sdk.ok("GET", &format!("auth_group/{group_id}"), None).await;
    assert_type("AuthGroup", &g, AUTH_GROUP, &["id", "name", "chap_status"]);
    assert_eq!(g["chap_status"], json!(1));

    // iscsitarget.go@7db4426a Create with the four fields, AddLUN, Get,
    // ListDetail, ListNames. Item 1: luns[].number is a string.
    let target = sdk
        .ok(
            "POST",
            "target/iscsi",
            Some(json!({
                "name": "sdktarget",
                "auth_group_id": group_id,
                "portal_group_id": portal_id,
                "owner": owner,
            })),
        )
        .await;
    assert_type("ISCSITarget", &target, TARGET, &["id"]);
    let target_id = target["id"].as_str().expect("target id").to_string();
    sdk.ok(
        "PUT",
        &format!("target/iscsi/lun/{target_id}"),
        Some(json!({"owner": owner, "lun_ids": [lun_id]})),
    )
    .await;
    let t = sdk
        .ok("GET", &format!("target/iscsi/{target_id}"), None)
        .await;
    assert_type("ISCSITarget", &t, TARGET, &["id", "name", "luns"]);
    let mapped = list("ISCSITarget.Luns", &t["luns"]);
    assert_eq!(mapped.len(), 1);
    assert_type(
        "ISCSITarget.Luns",
        &mapped[0],
        TARGET_LUN,
        &["id", "number"],
    );
    for t in list(
        "ISCSITargets.ListDetail",
        &sdk.ok("GET", "target/iscsi/list", None).await,
    ) {
        assert_type("ISCSITarget", &t, TARGET, &["id", "name"]);
        for m in list("luns", &t["luns"]) {
            assert_type("ISCSITarget.Luns", &m, TARGET_LUN, &["id", "number"]);
        }
    }
    list(
        "ISCSITargets.ListNames",
        &sdk.ok("GET", "target/iscsi", None).await,
    );
    // iscsitarget.go@7db4426a ChangeName, ChangeAuthGroup, ChangePortalGroup.
    sdk.ok(
        "PATCH",
        &format!("target/iscsi/{target_id}"),
        Some(json!({"name": "sdktarget2", "owner": owner})),
    )
    .await;
    sdk.ok(
        "PATCH",
        &format!("target/iscsi/auth_group/{target_id}"),
        Some(json!({"auth_group_id": "1", "owner": owner})),
    )
    .await;
    sdk.ok(
        "PATCH",
        &format!("target/iscsi/auth_group/{target_id}"),
        Some(json!({"auth_group_id": group_id, "owner": owner})),
    )
    .await;
    sdk.ok(
        "PATCH",
        &format!("target/iscsi/portal_group/{target_id}"),
        Some(json!({"portal_group_id": portal_id, "owner": owner})),
    )
    .await;
    let renamed = sdk
        .ok("GET", &format!("target/iscsi/{target_id}"), None)
        .await;
    assert_eq!(renamed["name"], "sdktarget2");

    // snapshot.go@7db4426a Create, Get, List, ListDetail(volume_id). Items 1
    // and 6: `reserved` a string, `volume_name` (not `lun_name`).
    let snap = sdk
        .ok(
            "POST",
            "snapshot",
            Some(json!({"name": "snap1", "volume_id": lun_id})),
        )
        .await;
    assert_type("Snapshot", &snap, SNAPSHOT, &["id", "name", "volume_id"]);
    let snap_id = snap["id"].as_str().expect("snapshot id").to_string();
    let detail = sdk.ok("GET", &format!("snapshot/{snap_id}"), None).await;
    assert_type(
        "Snapshot",
        &detail,
        SNAPSHOT,
        &[
            "id",
            "name",
            "volume_id",
            "volume_name",
            "reserved",
            "created",
        ],
    );
    // The live record in snapshot_test.go@7db4426a (liveSnapshotShape) has
    // exactly these keys.
    let live_keys = [
        "binded",
        "created",
        "id",
        "name",
        "path",
        "pool_name",
        "reserved",
        "restore",
        "vol_size",
        "volume_id",
        "volume_name",
        "volume_type",
    ];
    let mut keys: Vec<&str> = detail
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, live_keys);
    for s in list("Snapshots.List", &sdk.ok("GET", "snapshot", None).await) {
        assert_type("Snapshot", &s, SNAPSHOT, &["id", "name", "volume_name"]);
    }
    let filtered = list(
        "Snapshots.ListDetail",
        &sdk.ok("GET", &format!("snapshot/list?volume_id={lun_id}"), None)
            .await,
    );
    assert_eq!(filtered.len(), 1);

    // Item 2: snapshot.go@7db4426a CreateSchedule sends the SnapshotSchedule
    // type as it is (every field, empty strings included); GetSchedule
    // decodes the same type.
    let schedule = json!({
        "id": "",
        "volume_id": "",
        "volume_name": "",
        "interval": "0 2 * * *",
        "retention": "7",
        "enabled": true,
        "next_run": "",
    });
    let made = sdk
        .ok(
            "POST",
            &format!("snapshot/schedule/{lun_id}"),
            Some(schedule),
        )
        .await;
    assert_type("SnapshotSchedule", &made, SCHEDULE, &[]);
    let got = sdk
        .ok("GET", &format!("snapshot/schedule/{lun_id}"), None)
        .await;
    assert_type(
        "SnapshotSchedule",
        &got,
        SCHEDULE,
        &["interval", "retention", "enabled"],
    );
    assert_eq!(
        (&got["interval"], &got["retention"], &got["enabled"]),
        (&json!("0 2 * * *"), &json!("7"), &json!(true))
    );
    sdk.ok("DELETE", &format!("snapshot/schedule/{lun_id}"), None)
        .await;

    // Item 5: clone bookkeeping. snapshot.go@4cbe64a6 Clone returns
    // `volume_id`; deleting the parent while the clone lives is refused
    // (534, as for the snapshot itself); deleting the clone frees the
    // snapshot, which can then be deleted.
    let clone = sdk
        .ok(
            "POST",
            &format!("snapshot/clone/{snap_id}"),
            Some(json!({"name": "clone1"})),
        )
        .await;
    let clone_id = clone["volume_id"]
        .as_str()
        .expect("Clone reads volume_id")
        .to_string();
    sdk.ok(
        "PATCH",
        &format!("target/iscsi/lun/{target_id}"),
        Some(json!({"owner": owner, "lun_ids": [lun_id]})),
    )
    .await;
    let (status, refused) = sdk.send("DELETE", &format!("lun/{lun_id}"), None).await;
    assert_eq!(
        refused["code"],
        json!(534),
        "parent with a live clone: HTTP {status} {refused}"
    );
    let (_, refused) = sdk
        .send("DELETE", &format!("snapshot/{snap_id}"), None)
        .await;
    assert_eq!(refused["code"], json!(534), "{refused}");
    sdk.ok("DELETE", &format!("lun/{clone_id}"), None).await;
    // snapshot.go@4cbe64a6 Restore sends {"confirm": "true"}.
    sdk.ok(
        "POST",
        &format!("snapshot/restore/{snap_id}"),
        Some(json!({"confirm": "true"})),
    )
    .await;
    sdk.ok("DELETE", &format!("snapshot/{snap_id}"), None).await;
    // snapshot.go@7db4426a DeleteAll.
    sdk.ok(
        "POST",
        "snapshot",
        Some(json!({"name": "snap2", "volume_id": lun_id})),
    )
    .await;
    sdk.ok("DELETE", &format!("snapshot/all/{lun_id}"), None)
        .await;
    assert!(
        list(
            "Snapshots.ListDetail",
            &sdk.ok("GET", &format!("snapshot/list?volume_id={lun_id}"), None)
                .await
        )
        .is_empty()
    );
    // Every call of the scenario reached a route of the sdk dialect.
    // (An unrouted call is logged with its full path, a routed one by
    // its template.)
    let unrouted = sim
        .calls()
        .count_where(|c| c.operation.contains("/api/v2/"));
    assert_eq!(unrouted, 0, "calls that matched no route");

    // Teardown as the SDK's idempotent deletes do it.
    sdk.ok("DELETE", &format!("target/iscsi/{target_id}"), None)
        .await;
    sdk.ok("DELETE", &format!("auth_group/chap/{group_id}"), None)
        .await;
    sdk.ok("DELETE", &format!("auth_group/{group_id}"), None)
        .await;
    sdk.ok("DELETE", &format!("lun/{lun_id}"), None).await;
    // errors.go@4e59702d: 5011 is the documented not-found code.
    let (_, gone) = sdk.send("GET", &format!("lun/{lun_id}"), None).await;
    assert_eq!(gone["code"], json!(5011));
}

#[tokio::test]
async fn the_document_dialect_keeps_portal_groups_read_only_and_its_own_shapes() {
    let sim = sim(Dialect::Document).await;
    let sdk = Sdk::new(&sim);
    let owner = sdk.owner.clone();
    // Not in the document: a code-less 404, as for any unknown path.
    let (status, v) = sdk
        .send(
            "POST",
            "portal_group",
            Some(json!({"name": "x", "owner": owner})),
        )
        .await;
    assert_eq!(status, 404, "{v}");
    assert!(v.get("code").is_none(), "{v}");
    // The document's overview is an array, its overloaded volumes an object.
    list("overview", &sdk.ok("GET", "pool/overview", None).await);
    let overloaded = sdk.ok("GET", "status/overloaded_volumes", None).await;
    assert!(overloaded["overloaded_volumes"].is_array(), "{overloaded}");
    // The document's schedule body is still required as written.
    let created = sdk
        .ok(
            "POST",
            "lun/",
            Some(json!({"pool_name": "pool1", "name": "d1", "size": 1, "sing": "G"})),
        )
        .await;
    let id = created["luns"][0]["vol_id"]
        .as_str()
        .expect("vol_id")
        .to_string();
    let (status, v) = sdk
        .send(
            "POST",
            &format!("snapshot/schedule/{id}"),
            Some(json!({"interval": "0 2 * * *", "retention": "7"})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or_default()
            .contains("cron_time"),
        "{v}"
    );
    // The document's AddCHAP still needs the owner.
    let group = sdk
        .ok(
            "POST",
            "auth_group/",
            Some(json!({"name": "docgroup", "owner": owner})),
        )
        .await;
    let gid = group["id"].as_str().expect("id").to_string();
    let (status, v) = sdk
        .send(
            "PATCH",
            &format!("auth_group/chap/{gid}"),
            Some(json!({"username": "u", "password": "p4ssword-long"})),
        )
        .await;
    assert_eq!(status, 400, "{v}");
    assert!(
        v["error"].as_str().unwrap_or_default().contains("owner"),
        "{v}"
    );
}
