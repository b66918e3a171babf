//! The validations of PRODUCT.md section 3 ("bad input is rejected at
//! `kubectl apply` time") as the generated CRD YAML expresses them: each rule
//! is exercised on an object that breaks it and on one that keeps it.

mod support;

use serde_json::{Value, json};
use support::{assert_accepted, assert_refused, check_create, check_update};

fn obj(kind: &str, spec: Value) -> Value {
    json!({
        "apiVersion": "array-operator.io/v1alpha1",
        "kind": kind,
        "metadata": {"name": "x", "namespace": "default"},
        "spec": spec,
    })
}

fn dsm_lun(size: &str) -> Value {
    obj(
        "Lun",
        json!({"arrayRef": {"name": "dsm1"}, "size": size, "location": "/volume1"}),
    )
}

fn with(mut object: Value, path: &[&str], value: Value) -> Value {
    let mut cursor = &mut object["spec"];
    for key in &path[..path.len() - 1] {
        cursor = &mut cursor[*key];
    }
    cursor[path[path.len() - 1]] = value;
    object
}

fn without(mut object: Value, field: &str) -> Value {
    object["spec"]
        .as_object_mut()
        .expect("spec object")
        .remove(field);
    object
}

// ---- Lun ----

#[test]
fn lun_size_may_only_grow() {
    let old = dsm_lun("10Gi");
    assert_accepted(check_update("Lun", &old, &dsm_lun("20Gi")));
    assert_accepted(check_update("Lun", &old, &dsm_lun("10240Mi")));
    assert_refused(
        check_update("Lun", &old, &dsm_lun("5Gi")),
        &["size", "may only grow"],
    );
    assert_refused(
        check_update("Lun", &old, &dsm_lun("10G")),
        &["size", "may only grow"],
    );
}

#[test]
fn lun_size_must_be_a_positive_byte_quantity() {
    assert_accepted(check_create("Lun", &dsm_lun("1099511627776")));
    assert_refused(
        check_create("Lun", &dsm_lun("0")),
        &["size", "greater than zero"],
    );
    for bad in ["1.5Gi", "10GB", "-1Gi", "ten", "100m"] {
        assert_refused(check_create("Lun", &dsm_lun(bad)), &["/spec/size"]);
    }
}

#[test]
fn lun_location_and_pool_are_immutable_and_exclusive() {
    let old = dsm_lun("10Gi");
    assert_refused(
        check_update(
            "Lun",
            &old,
            &with(old.clone(), &["location"], json!("/volume2")),
        ),
        &["location", "immutable"],
    );
    assert_refused(
        check_update("Lun", &old, &without(old.clone(), "location")),
        &["location", "immutable"],
    );
    let ngx = obj(
        "Lun",
        json!({"arrayRef": {"name": "ngx1"}, "size": "1Gi", "pool": "pool1"}),
    );
    assert_refused(
        check_update("Lun", &ngx, &with(ngx.clone(), &["pool"], json!("pool2"))),
        &["pool", "immutable"],
    );
    assert_refused(
        check_create("Lun", &with(ngx.clone(), &["location"], json!("/volume1"))),
        &["pool", "not both"],
    );
    assert_refused(
        check_create("Lun", &with(ngx, &["pool"], json!("pool_1"))),
        &["/spec/pool"],
    );
    assert_refused(
        check_create(
            "Lun",
            &with(dsm_lun("1Gi"), &["location"], json!("volume1")),
        ),
        &["/spec/location"],
    );
}

#[test]
fn lun_source_is_create_time_only_and_names_one_origin() {
    let plain = dsm_lun("10Gi");
    let clone = with(
        plain.clone(),
        &["source"],
        json!({"lunRef": {"name": "base"}}),
    );
    assert_accepted(check_create("Lun", &clone));
    assert_refused(
        check_update("Lun", &plain, &clone),
        &["source", "create-time"],
    );
    assert_refused(
        check_update("Lun", &clone, &plain),
        &["source", "create-time"],
    );
    let other = with(
        plain.clone(),
        &["source"],
        json!({"lunRef": {"name": "other"}}),
    );
    assert_refused(
        check_update("Lun", &clone, &other),
        &["source", "create-time"],
    );
    assert_accepted(check_update(
        "Lun",
        &clone,
        &with(clone.clone(), &["size"], json!("11Gi")),
    ));
    assert_refused(
        check_create(
            "Lun",
            &with(
                plain.clone(),
                &["source"],
                json!({"lunRef": {"name": "a"}, "snapshot": "ab12"}),
            ),
        ),
        &["exactly one of lunRef or snapshot"],
    );
    assert_refused(
        check_create("Lun", &with(plain, &["source"], json!({}))),
        &["exactly one of lunRef or snapshot"],
    );
}

#[test]
fn lun_vendor_sections_only_go_with_their_vendor() {
    let dsm = dsm_lun("1Gi");
    assert_accepted(check_create(
        "Lun",
        &with(
            dsm.clone(),
            &["synology"],
            json!({"type": "BLUN", "emulateTpu": true}),
        ),
    ));
    assert_refused(
        check_create(
            "Lun",
            &with(dsm.clone(), &["ngxstorage"], json!({"compression": true})),
        ),
        &["ngxstorage", "spec.pool"],
    );
    let both = with(
        with(dsm, &["synology"], json!({})),
        &["ngxstorage"],
        json!({}),
    );
    assert_refused(check_create("Lun", &both), &["not both"]);
}

#[test]
fn lun_enums_refuse_unknown_values() {
    let dsm = dsm_lun("1Gi");
    assert_refused(
        check_create(
            "Lun",
            &with(dsm.clone(), &["synology"], json!({"type": "ZFS"})),
        ),
        &["/spec/synology/type"],
    );
    assert_refused(
        check_create(
            "Lun",
            &with(dsm.clone(), &["managementPolicy"], json!("Ignore")),
        ),
        &["/spec/managementPolicy"],
    );
    assert_refused(
        check_create("Lun", &with(dsm, &["deletionPolicy"], json!("Orphan"))),
        &["/spec/deletionPolicy"],
    );
    let ngx = obj(
        "Lun",
        json!({"arrayRef": {"name": "n"}, "size": "1Gi", "pool": "p1", "ngxstorage": {}}),
    );
    for (field, bad) in [
        ("blocksize", json!("2k")),
        ("ioType", json!("random")),
        ("qosPriority", json!(12)),
    ] {
        assert_refused(
            check_create("Lun", &with(ngx.clone(), &["ngxstorage", field], bad)),
            &[&format!("/spec/ngxstorage/{field}")],
        );
    }
}

#[test]
fn lun_create_time_settings_are_immutable() {
    let old = with(dsm_lun("1Gi"), &["synology"], json!({"type": "BLUN"}));
    assert_refused(
        check_update(
            "Lun",
            &old,
            &with(old.clone(), &["synology", "type"], json!("ADV")),
        ),
        &["type is immutable"],
    );
    assert_refused(
        check_update(
            "Lun",
            &old,
            &with(old.clone(), &["thinProvisioning"], json!(false)),
        ),
        &["thinProvisioning", "immutable"],
    );
    assert_accepted(check_update(
        "Lun",
        &old,
        &with(old.clone(), &["synology", "emulateCaw"], json!(true)),
    ));
}

// ---- IscsiTarget ----

fn target(iqn: Option<&str>) -> Value {
    let mut spec = json!({"arrayRef": {"name": "dsm1"}, "luns": ["a", "b"]});
    if let Some(iqn) = iqn {
        spec["iqn"] = json!(iqn);
    }
    obj("IscsiTarget", spec)
}

#[test]
fn target_iqn_is_immutable_once_set() {
    let set = target(Some("iqn.2000-01.com.synology:dsm1.t1"));
    assert_accepted(check_update("IscsiTarget", &target(None), &set));
    assert_refused(
        check_update(
            "IscsiTarget",
            &set,
            &target(Some("iqn.2000-01.com.synology:dsm1.t2")),
        ),
        &["iqn", "immutable"],
    );
    assert_refused(
        check_update("IscsiTarget", &set, &target(None)),
        &["iqn", "immutable"],
    );
}

#[test]
fn target_iqns_must_be_well_formed() {
    for good in [
        "iqn.2000-01.com.synology:dsm1.t1",
        "iqn.1998-01.com.vmware:esx01",
        "eui.02004567A425678D",
    ] {
        assert_accepted(check_create("IscsiTarget", &target(Some(good))));
    }
    for bad in [
        "iqn.2000-13.com.synology:t",
        "iqn.20-01.com.x",
        "IQN.2000-01.com.synology:t",
        "iqn.2000-01.com.synology:has space",
        "target1",
    ] {
        assert_refused(
            check_create("IscsiTarget", &target(Some(bad))),
            &["/spec/iqn"],
        );
    }
    let bad_initiator = with(target(None), &["initiators"], json!(["not-an-iqn"]));
    assert_refused(
        check_create("IscsiTarget", &bad_initiator),
        &["/spec/initiators/0"],
    );
}

#[test]
fn target_lun_list_is_a_set_of_object_names() {
    assert_refused(
        check_create(
            "IscsiTarget",
            &with(target(None), &["luns"], json!(["Bad_Name"])),
        ),
        &["/spec/luns/0"],
    );
    let schema = support::schema("IscsiTarget");
    assert_eq!(
        schema["properties"]["spec"]["properties"]["luns"]["x-kubernetes-list-type"],
        "set"
    );
}

#[test]
fn target_vendor_fields_and_ranges() {
    let mixed = with(
        with(target(None), &["portalGroup"], json!("pg1")),
        &["maxRecvSegBytes"],
        json!(8192),
    );
    assert_refused(
        check_create("IscsiTarget", &mixed),
        &["portalGroup", "NGXStorage-only"],
    );
    assert_refused(
        check_create(
            "IscsiTarget",
            &with(target(None), &["maxRecvSegBytes"], json!(1000)),
        ),
        &["/spec/maxRecvSegBytes"],
    );
    assert_refused(
        check_create(
            "IscsiTarget",
            &with(target(None), &["maxSessions"], json!(-1)),
        ),
        &["/spec/maxSessions"],
    );
}

// ---- SnapshotSchedule ----

fn schedule(cron: &str) -> Value {
    obj(
        "SnapshotSchedule",
        json!({"arrayRef": {"name": "a"}, "schedule": cron, "luns": ["l1"], "retention": {"maxCount": 3}}),
    )
}

#[test]
fn schedule_cron_is_five_fields_or_a_shortcut() {
    for good in [
        "0 * * * *",
        "*/15 1-5 * * MON-FRI",
        "@hourly",
        "@daily",
        "@weekly",
    ] {
        assert_accepted(check_create("SnapshotSchedule", &schedule(good)));
    }
    for bad in [
        "* * * *",
        "0 * * * * *",
        "@every 5m",
        "@yearly",
        "",
        "0  * * * *",
    ] {
        assert_refused(
            check_create("SnapshotSchedule", &schedule(bad)),
            &["/spec/schedule"],
        );
    }
}

/// Issue 12: the pattern checked the shape of the fields, not their
/// ranges; each field now has its own rule, whose message names it.
#[test]
fn schedule_cron_fields_out_of_range_are_refused_naming_the_field() {
    for good in [
        "59 23 31 12 7",
        "0,15,30,45 0-23/2 1-31 JAN-DEC SUN-SAT",
        "*/5 * ? * ?",
        "0 0 1 1 0",
        "5-10/2 8 * 6 mon-fri",
    ] {
        assert_accepted(check_create("SnapshotSchedule", &schedule(good)));
    }
    for (bad, field) in [
        ("99 * * * *", "minute"),
        ("60 * * * *", "minute"),
        ("0-61 * * * *", "minute"),
        ("*/0 * * * *", "minute"),
        ("0 24 * * *", "hour"),
        ("0 1,25 * * *", "hour"),
        ("0 0 0 * *", "day-of-month"),
        ("0 0 32 * *", "day-of-month"),
        ("0 0 * 13 *", "month"),
        ("0 0 * 0 *", "month"),
        ("0 0 * FOO *", "month"),
        ("0 0 * * 8", "day-of-week"),
        ("0 0 * * 1-9", "day-of-week"),
        ("0 0 * * L", "day-of-week"),
    ] {
        assert_refused(
            check_create("SnapshotSchedule", &schedule(bad)),
            &["schedule", &format!("the {field} field")],
        );
    }
}

#[test]
fn schedule_needs_exactly_one_of_selector_or_names() {
    let s = schedule("@daily");
    assert_refused(
        check_create("SnapshotSchedule", &without(s.clone(), "luns")),
        &["exactly one of spec.lunSelector or spec.luns"],
    );
    let both = with(
        s.clone(),
        &["lunSelector"],
        json!({"matchLabels": {"app": "db"}}),
    );
    assert_refused(
        check_create("SnapshotSchedule", &both),
        &["exactly one of spec.lunSelector or spec.luns"],
    );
    let selector = with(
        without(s, "luns"),
        &["lunSelector"],
        json!({"matchLabels": {"app": "db"}}),
    );
    assert_accepted(check_create("SnapshotSchedule", &selector));
}

#[test]
fn schedule_retention_and_time_zone() {
    let s = schedule("@daily");
    assert_refused(
        check_create(
            "SnapshotSchedule",
            &with(s.clone(), &["retention"], json!({})),
        ),
        &["maxCount, maxAge or both"],
    );
    assert_refused(
        check_create(
            "SnapshotSchedule",
            &with(s.clone(), &["retention"], json!({"maxCount": 0})),
        ),
        &["/spec/retention/maxCount"],
    );
    assert_refused(
        check_create(
            "SnapshotSchedule",
            &with(s.clone(), &["retention"], json!({"maxAge": "7 days"})),
        ),
        &["/spec/retention/maxAge"],
    );
    assert_refused(
        check_create(
            "SnapshotSchedule",
            &with(s.clone(), &["timeZone"], json!("Europe Istanbul")),
        ),
        &["/spec/timeZone"],
    );
    assert_accepted(check_create(
        "SnapshotSchedule",
        &with(s, &["timeZone"], json!("America/Argentina/Buenos_Aires")),
    ));
}

// ---- ReplicationPlan ----

fn plan(trigger: Value) -> Value {
    obj(
        "ReplicationPlan",
        json!({"arrayRef": {"name": "dsm1"}, "planId": "3", "trigger": trigger}),
    )
}

#[test]
fn plan_trigger_is_exactly_one_of_schedule_or_manual() {
    assert_accepted(check_create(
        "ReplicationPlan",
        &plan(json!({"schedule": "30 2 * * *"})),
    ));
    assert_accepted(check_create(
        "ReplicationPlan",
        &plan(json!({"manual": "t1"})),
    ));
    assert_refused(
        check_create(
            "ReplicationPlan",
            &plan(json!({"schedule": "@daily", "manual": "t1"})),
        ),
        &["exactly one of schedule or manual"],
    );
    assert_refused(
        check_create("ReplicationPlan", &plan(json!({}))),
        &["exactly one of schedule or manual"],
    );
    assert_refused(
        check_create(
            "ReplicationPlan",
            &plan(json!({"manual": "t", "timeZone": "UTC"})),
        ),
        &["timeZone", "only goes with"],
    );
    assert_refused(
        check_create("ReplicationPlan", &plan(json!({"schedule": "every day"}))),
        &["/spec/trigger/schedule"],
    );
}

#[test]
fn plan_schedule_fields_are_range_checked_like_snapshot_schedules() {
    assert_refused(
        check_create("ReplicationPlan", &plan(json!({"schedule": "0 24 * * *"}))),
        &["hour"],
    );
    assert_refused(
        check_create("ReplicationPlan", &plan(json!({"schedule": "99 * * * *"}))),
        &["minute"],
    );
    assert_accepted(check_create(
        "ReplicationPlan",
        &plan(json!({"schedule": "*/15 1-5 * * MON-FRI", "timeZone": "Europe/Istanbul"})),
    ));
}

#[test]
fn plan_id_is_immutable() {
    let old = plan(json!({"manual": "t1"}));
    let mut new = old.clone();
    new["spec"]["planId"] = json!("4");
    assert_refused(
        check_update("ReplicationPlan", &old, &new),
        &["planId is immutable"],
    );
    let mut token = old.clone();
    token["spec"]["trigger"]["manual"] = json!("t2");
    assert_accepted(check_update("ReplicationPlan", &old, &token));
}

// ---- VirtualMachine ----

fn vm() -> Value {
    obj(
        "VirtualMachine",
        json!({
            "arrayRef": {"name": "dsm1"}, "storage": "VM Storage 1", "cpus": 2,
            "memory": "4Gi", "disks": [{"size": "32Gi"}], "nics": [{"network": "Default"}]
        }),
    )
}

#[test]
fn vm_disks_and_nics_are_create_time_only() {
    let old = vm();
    assert_refused(
        check_update(
            "VirtualMachine",
            &old,
            &with(old.clone(), &["disks"], json!([{"size": "64Gi"}])),
        ),
        &["disks", "create-time"],
    );
    assert_refused(
        check_update(
            "VirtualMachine",
            &old,
            &with(old.clone(), &["nics"], json!([])),
        ),
        &["nics", "create-time"],
    );
    assert_accepted(check_update(
        "VirtualMachine",
        &old,
        &with(old.clone(), &["cpus"], json!(4)),
    ));
}

#[test]
fn vm_fields_are_checked() {
    let v = vm();
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(
                v.clone(),
                &["disks"],
                json!([{"size": "1Gi", "image": "ubuntu"}]),
            ),
        ),
        &["exactly one of size or image"],
    );
    assert_refused(
        check_create("VirtualMachine", &with(v.clone(), &["disks"], json!([]))),
        &["/spec/disks"],
    );
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(v.clone(), &["runStrategy"], json!("RerunOnFailure")),
        ),
        &["/spec/runStrategy"],
    );
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(v.clone(), &["autorun"], json!("Yes")),
        ),
        &["/spec/autorun"],
    );
    assert_refused(
        check_create("VirtualMachine", &with(v.clone(), &["cpus"], json!(0))),
        &["/spec/cpus"],
    );
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(v.clone(), &["memory"], json!("128Mi")),
        ),
        &["memory", "at least 256Mi"],
    );
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(
                v.clone(),
                &["nics"],
                json!([{"network": "n", "mac": "zz:11:22:33:44:55"}]),
            ),
        ),
        &["/spec/nics/0/mac"],
    );
    let poweroff = with(
        with(v, &["stopMode"], json!("PowerOff")),
        &["stopTimeout"],
        json!("1m"),
    );
    assert_refused(
        check_create("VirtualMachine", &poweroff),
        &["stopTimeout", "only applies"],
    );
}

// ---- StorageArray ----

fn array(vendor: &str) -> Value {
    obj(
        "StorageArray",
        json!({"vendor": vendor, "endpoint": "https://a.example.com:5001", "credentialsSecretRef": {"name": "c"}}),
    )
}

#[test]
fn array_vendor_sections_and_endpoint() {
    assert_accepted(check_create("StorageArray", &array("Synology")));
    assert_refused(
        check_create("StorageArray", &array("NGXStorage")),
        &["ngxstorage.owner is required"],
    );
    let ngx = with(
        array("NGXStorage"),
        &["ngxstorage"],
        json!({"owner": "RSA3Q866_A"}),
    );
    assert_accepted(check_create("StorageArray", &ngx));
    assert_refused(
        check_create(
            "StorageArray",
            &with(array("Synology"), &["ngxstorage"], json!({"owner": "X_A"})),
        ),
        &["only allowed when spec.vendor is NGXStorage"],
    );
    assert_refused(
        check_create(
            "StorageArray",
            &with(
                array("Synology"),
                &["secondaryEndpoint"],
                json!("https://b"),
            ),
        ),
        &["secondaryEndpoint"],
    );
    assert_refused(
        check_create(
            "StorageArray",
            &with(array("Synology"), &["endpoint"], json!("http://a:5000")),
        ),
        &["/spec/endpoint"],
    );
    assert_refused(
        check_create("StorageArray", &array("NetApp")),
        &["/spec/vendor"],
    );
    assert_refused(
        check_create(
            "StorageArray",
            &with(ngx.clone(), &["ngxstorage", "owner"], json!("RSA3Q866_C")),
        ),
        &["/spec/ngxstorage/owner"],
    );
    assert_refused(
        check_create(
            "StorageArray",
            &with(
                ngx.clone(),
                &["ngxstorage", "resizeMode"],
                json!("Relative"),
            ),
        ),
        &["/spec/ngxstorage/resizeMode"],
    );
    assert_refused(
        check_update(
            "StorageArray",
            &ngx,
            &with(ngx.clone(), &["vendor"], json!("Synology")),
        ),
        &["vendor is immutable"],
    );
    for (field, bad) in [
        ("maxConcurrentRequests", json!(0)),
        ("requestTimeout", json!("30 seconds")),
        ("resyncInterval", json!("5")),
    ] {
        assert_refused(
            check_create("StorageArray", &with(array("Synology"), &[field], bad)),
            &[&format!("/spec/{field}")],
        );
    }
}

// ---- Vendor limits the schema states (api-docs) ----

fn named(mut object: Value, name: &str) -> Value {
    object["metadata"]["name"] = json!(name);
    object
}

fn ngx_lun() -> Value {
    obj(
        "Lun",
        json!({"arrayRef": {"name": "ngx1"}, "size": "1Gi", "pool": "pool1"}),
    )
}

#[test]
fn ngx_lun_names_are_1_to_30_letters_digits_underscores_or_hyphens() {
    assert_accepted(check_create(
        "Lun",
        &with(ngx_lun(), &["name"], json!("vmfs_01-a")),
    ));
    assert_accepted(check_create(
        "Lun",
        &with(ngx_lun(), &["name"], json!("a".repeat(30))),
    ));
    for bad in ["vmfs.01", "a".repeat(31).as_str()] {
        assert_refused(
            check_create("Lun", &with(ngx_lun(), &["name"], json!(bad))),
            &["spec.name", "NGXStorage", "1-30"],
        );
    }
    // NGX settings without a pool say NGX too.
    let settings = with(
        without(ngx_lun(), "pool"),
        &["ngxstorage"],
        json!({"compression": true}),
    );
    assert_refused(
        check_create("Lun", &with(settings, &["name"], json!("a.b"))),
        &["spec.name", "NGXStorage"],
    );
    // DSM keeps its own, wider rule: dots and up to 128 characters.
    assert_accepted(check_create(
        "Lun",
        &with(
            dsm_lun("1Gi"),
            &["name"],
            json!(format!("db.{}", "a".repeat(100))),
        ),
    ));
}

#[test]
fn an_unset_spec_name_falls_back_to_a_metadata_name_the_array_accepts() {
    // NGX: metadata.name is the array name, so no dots and 30 at most.
    assert_accepted(check_create("Lun", &named(ngx_lun(), "vmfs-01")));
    for bad in ["vmfs.01", "a".repeat(31).as_str()] {
        assert_refused(
            check_create("Lun", &named(ngx_lun(), bad)),
            &["metadata.name", "NGXStorage", "set spec.name"],
        );
    }
    // ... unless spec.name says otherwise.
    assert_accepted(check_create(
        "Lun",
        &with(named(ngx_lun(), "vmfs.01"), &["name"], json!("vmfs_01")),
    ));
    // DSM: 128 characters at most.
    assert_accepted(check_create(
        "Lun",
        &named(dsm_lun("1Gi"), &"a".repeat(128)),
    ));
    assert_refused(
        check_create("Lun", &named(dsm_lun("1Gi"), &"a".repeat(129))),
        &["metadata.name", "128", "set spec.name"],
    );
    // Targets: the same, with portalGroup marking NGX.
    let ngx_target = with(target(None), &["portalGroup"], json!("default"));
    assert_accepted(check_create(
        "IscsiTarget",
        &named(ngx_target.clone(), "esx-target"),
    ));
    assert_refused(
        check_create("IscsiTarget", &named(ngx_target.clone(), "esx.target")),
        &["metadata.name", "NGXStorage"],
    );
    assert_refused(
        check_create(
            "IscsiTarget",
            &with(ngx_target, &["name"], json!("a".repeat(31))),
        ),
        &["spec.name", "NGXStorage", "1-30"],
    );
    assert_refused(
        check_create("IscsiTarget", &named(target(None), &"t".repeat(129))),
        &["metadata.name", "128"],
    );
}

#[test]
fn retention_count_stays_within_what_an_array_keeps() {
    let s = schedule("@daily");
    assert_accepted(check_create(
        "SnapshotSchedule",
        &with(s.clone(), &["retention"], json!({"maxCount": 512})),
    ));
    assert_refused(
        check_create(
            "SnapshotSchedule",
            &with(s, &["retention"], json!({"maxCount": 513})),
        ),
        &["/spec/retention/maxCount"],
    );
}

/// Issue 14: vendor limits the schema can state, both ways.
#[test]
fn vendor_limits_stated_by_the_schema_accept_what_the_arrays_take() {
    // NGXStorage sizes LUNs in MiB; DSM takes any byte size.
    assert_accepted(check_create(
        "Lun",
        &with(ngx_lun(), &["size"], json!("1536Mi")),
    ));
    assert_refused(
        check_create("Lun", &with(ngx_lun(), &["size"], json!("1G"))),
        &["spec.size", "whole number of MiB"],
    );
    assert_accepted(check_create("Lun", &dsm_lun("1G")));
    // DSM LUN types agree with thinProvisioning.
    let thick = with(
        with(dsm_lun("1Gi"), &["thinProvisioning"], json!(false)),
        &["synology"],
        json!({"type": "BLUN_THICK"}),
    );
    assert_accepted(check_create("Lun", &thick));
    assert_refused(
        check_create("Lun", &with(thick, &["thinProvisioning"], json!(true))),
        &["spec.synology.type", "agree with spec.thinProvisioning"],
    );
    // NGXStorage targets: no Synology-only settings, always enabled.
    let ngx_target = with(target(None), &["portalGroup"], json!("default"));
    assert_accepted(check_create("IscsiTarget", &ngx_target));
    assert_refused(
        check_create(
            "IscsiTarget",
            &with(ngx_target.clone(), &["headerDigest"], json!(true)),
        ),
        &["spec.portalGroup", "no such settings"],
    );
    assert_refused(
        check_create("IscsiTarget", &with(ngx_target, &["enabled"], json!(false))),
        &["spec.enabled", "no enable switch"],
    );
    assert_accepted(check_create(
        "IscsiTarget",
        &with(target(None), &["enabled"], json!(false)),
    ));
    // VMM takes whole MiB.
    assert_accepted(check_create(
        "VirtualMachine",
        &with(vm(), &["memory"], json!("1536Mi")),
    ));
    assert_refused(
        check_create("VirtualMachine", &with(vm(), &["memory"], json!("1G"))),
        &["spec.memory", "whole number of MiB"],
    );
    assert_refused(
        check_create(
            "VirtualMachine",
            &with(vm(), &["disks"], json!([{"size": "10G"}])),
        ),
        &["spec.disks[0].size", "whole number of MiB"],
    );
}
