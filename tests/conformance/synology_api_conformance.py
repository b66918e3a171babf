#!/usr/bin/env python3
"""Drive the published `synology-api` client (PyPI, 0.9.4) against the DSM
simulator over HTTPS, through every iSCSI / LUN snapshot / DR plan / VMM
operation the library implements, and print what it created as JSON.

Run by tests/dsm_conformance.rs, which then checks the resulting state with
the Rust client. The library is used as shared/dsm-wire/README.md describes:
secure=True (plain login over HTTPS), dsm_version=6, certificate verified
against the simulator's CA (--ca, given to requests as REQUESTS_CA_BUNDLE).
Ids come from the library's return values, never from constants.

Usage: python synology_api_conformance.py --host 127.0.0.1 --port N --ca FILE
           --user U --password P --out FILE
"""
from __future__ import annotations

import argparse
import json
import os
import sys


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", required=True)
    ap.add_argument("--ca", required=True)
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()

    # requests (used bare by synology-api) reads this for verify=True.
    os.environ["REQUESTS_CA_BUNDLE"] = a.ca
    os.environ.pop("CURL_CA_BUNDLE", None)
    # The simulator is on loopback; a proxy from the CI environment must not
    # be asked to reach it.
    for var in ("NO_PROXY", "no_proxy"):
        os.environ[var] = ",".join(filter(None, [os.environ.get(var), a.host, "localhost"]))

    from synology_api.core_iscsi import LUN, Target
    from synology_api.snapshot import Snapshot
    from synology_api.virtualization import Virtualization

    conn = dict(ip_address=a.host, port=a.port, username=a.user, password=a.password,
                secure=True, cert_verify=True, dsm_version=6, debug=False)
    steps: list[str] = []
    out: dict = {"steps": steps, "library_bugs": []}

    def ok(resp, step):
        """Every library call returns the DSM envelope; fail loudly otherwise."""
        steps.append(step)
        if not isinstance(resp, dict) or resp.get("success") is not True:
            raise RuntimeError(f"{step}: unexpected answer {resp!r}")
        return resp.get("data")

    lun = LUN(**conn)
    tgt = Target(**conn)
    snap = Snapshot(**conn)

    # ---- LUNs ------------------------------------------------------------
    d = ok(lun.create(name="conf-lun-1", type="THIN", location="/volume1", size=2 * 1024**3,
                      description="made by synology-api", emulate_tpws=True, emulate_caw=True,
                      emulate_3pc=True, emulate_tpu=True, emulate_fua_write=False,
                      emulate_sync_cache=False, can_snapshot=True), "LUN.create")
    lun1 = d["uuid"]
    d = ok(lun.create(name="conf-lun-2", type="BLUN", location="/volume1", size=1024**3),
           "LUN.create (2)")
    lun2 = d["uuid"]
    d = ok(lun.create(name="conf-lun-tmp", type="BLUN_THICK", location="/volume1", size=1024**3),
           "LUN.create (tmp)")
    lun_tmp = d["uuid"]
    d = ok(lun.list(), "LUN.list")
    names = sorted(x["name"] for x in d["luns"])
    if names != ["conf-lun-1", "conf-lun-2", "conf-lun-tmp"]:
        raise RuntimeError(f"LUN.list names {names}")
    d = ok(lun.get(lun1), "LUN.get")
    if d["lun"]["uuid"] != lun1 or d["lun"]["size"] != 2 * 1024**3:
        raise RuntimeError(f"LUN.get {d}")
    ok(lun.set(lun1, new_size=4 * 1024**3), "LUN.set")
    d = ok(lun.clone(lun1, "conf-lun-1-clone", dst_location="/volume1"), "LUN.clone")
    out["clone_uuid"] = d["dst_lun_uuid"]
    ok(lun.delete(lun_tmp), "LUN.delete")

    # ---- Targets ---------------------------------------------------------
    d = ok(tgt.create("conf-tgt-1", "iqn.2000-01.com.synology:nas01.conf-tgt-1", auth_type=1,
                      max_sessions=1, user="chapuser", password="chapsecret12"), "Target.create")
    tid1 = d["target_id"]
    d = ok(tgt.create("conf-tgt-tmp", "iqn.2000-01.com.synology:nas01.conf-tgt-tmp",
                      auth_type=2, user="chapuser", password="chapsecret12",
                      mutual_user="tgtuser", mutual_password="tgtsecret123"),
           "Target.create (mutual CHAP)")
    tid_tmp = d["target_id"]
    d = ok(tgt.list(), "Target.list")
    if sorted(t["target_id"] for t in d["targets"]) != sorted([tid1, tid_tmp]):
        raise RuntimeError(f"Target.list {d}")
    d = ok(tgt.get(tid1), "Target.get")
    if d["target"]["name"] != "conf-tgt-1":
        raise RuntimeError(f"Target.get {d}")
    ok(tgt.set(tid1, max_sessions=4, auth_type=1, user="chapuser", password="chapsecret12",
               has_header_checksum=True, has_data_checksum=False), "Target.set")
    ok(tgt.disable(tid1), "Target.disable")
    ok(tgt.enable(tid1), "Target.enable")
    ok(tgt.delete(tid_tmp), "Target.delete")

    # ---- Mappings, from both sides ------------------------------------------
    ok(lun.map_target(lun1, [tid1]), "LUN.map_target")
    ok(tgt.map_lun(tid1, [lun2]), "Target.map_lun")
    ok(tgt.map_lun(tid1, [out["clone_uuid"]]), "Target.map_lun (clone)")
    ok(tgt.unmap_lun(tid1, [out["clone_uuid"]]), "Target.unmap_lun")
    ok(lun.map_target(out["clone_uuid"], [tid1]), "LUN.map_target (clone)")
    ok(lun.unmap_target(out["clone_uuid"], [tid1]), "LUN.unmap_target")
    d = ok(tgt.get(tid1), "Target.get (mapped)")
    mapped = [m["lun_uuid"] for m in d["target"]["mapped_luns"]]
    if mapped != [lun1, lun2]:
        raise RuntimeError(f"mapped_luns {mapped}")

    # ---- LUN snapshots ------------------------------------------------------
    d = ok(snap.create_snapshot_lun(lun1, description="conf keep", lock=True, app_aware=False),
           "Snapshot.create_snapshot_lun")
    snap_keep = d["snapshot_uuid"]
    d = ok(snap.create_snapshot_lun(lun1, description="conf drop", lock=False, app_aware=False),
           "Snapshot.create_snapshot_lun (2)")
    snap_drop = d["snapshot_uuid"]
    d = ok(snap.list_snapshots_lun(lun1), "Snapshot.list_snapshots_lun")
    if sorted(s["uuid"] for s in d["snapshots"]) != sorted([snap_keep, snap_drop]):
        raise RuntimeError(f"list_snapshots_lun {d}")
    ok(snap.delete_snapshots_lun([snap_drop]), "Snapshot.delete_snapshots_lun")

    # ---- Replication --------------------------------------------------------
    d = ok(snap.list_replication_plans(), "Snapshot.list_replication_plans")
    plan_id = d["plans"][0]["plan_id"]
    ok(snap.sync_replication(plan_id), "Snapshot.sync_replication")

    # ---- Virtual Machine Manager --------------------------------------------
    vm = Virtualization(**conn)
    storages = ok(vm.get_storage_operation(), "Virtualization.get_storage_operation")["storages"]
    networks = ok(vm.get_network_group_list(), "Virtualization.get_network_group_list")["networks"]
    ok(vm.get_host_operation(), "Virtualization.get_host_operation")
    images = ok(vm.get_images_list(), "Virtualization.get_images_list")["images"]

    info = vm.file_station_list["SYNO.Virtualization.API.Guest"]

    def create_guest(name):
        # synology-api has no guest create; use its generic request_data()
        # with the VMM guide's parameter names, as dsm-wire does.
        d = ok(vm.request_data("SYNO.Virtualization.API.Guest", info["path"], {
            "version": info["maxVersion"], "method": "create",
            "guest_name": name, "storage_name": storages[0]["storage_name"],
            "vcpu_num": 1, "vram_size": 1024, "autorun": 0, "description": "conformance",
            "vnics": json.dumps([{"network_name": networks[0]["network_name"]}]),
            "vdisks": json.dumps([{"create_type": 1, "image_name": images[0]["image_name"]}]),
            "iso_images": json.dumps(["unmounted"]),
            "auto_clean_task": False,
        }), f"Guest.create {name} (request_data)")
        task = d["task_id"]
        for _ in range(10):
            t = ok(vm.get_task_info(task), "Virtualization.get_task_info")
            if t["finish"]:
                return t["task_info"]["guest_id"]
        raise RuntimeError(f"task {task} never finished")

    guest = create_guest("conf-vm")
    guest_del = create_guest("conf-vm-del")
    try:
        vm.get_vm_operation(additional=True)
        steps.append("Virtualization.get_vm_operation")
    except ValueError:
        # Library bug (dsm-wire README): `for k, v in guests` on a real list.
        steps.append("Virtualization.get_vm_operation (library ValueError)")
        out["library_bugs"].append("get_vm_operation raises ValueError on a guest list")
    d = ok(vm.get_specific_vm_info(guest_id=guest), "Virtualization.get_specific_vm_info")
    if d["guest_name"] != "conf-vm":
        raise RuntimeError(f"get_specific_vm_info {d}")
    d = ok(vm.get_specific_vm_info(guest_name="conf-vm", additional=["vdisks", "vnics"]),
           "Virtualization.get_specific_vm_info (additional list)")
    if len(d["vdisks"]) != 1:
        raise RuntimeError(f"vdisks {d}")
    ok(vm.set_vm_property(guest_id=guest, autorun=2, description="set by synology-api",
                          new_guest_name="conf-vm-b", vram_size=2048),
       "Virtualization.set_vm_property")
    ok(vm.vm_power_on(guest_id=guest), "Virtualization.vm_power_on")
    ok(vm.vm_shut_down(guest_id=guest), "Virtualization.vm_shut_down")
    ok(vm.vm_power_on(guest_id=guest), "Virtualization.vm_power_on (2)")
    ok(vm.vm_force_power_off(guest_id=guest), "Virtualization.vm_force_power_off")
    ok(vm.vm_power_on(guest_id=guest), "Virtualization.vm_power_on (3)")
    ok(vm.delete_vm(guest_id=guest_del), "Virtualization.delete_vm")

    lun.logout()
    steps.append("logout")

    out.update({"lun1": lun1, "lun2": lun2, "lun_tmp": lun_tmp, "target_id": tid1,
                "target_tmp": tid_tmp, "snapshot_kept": snap_keep, "snapshot_dropped": snap_drop,
                "plan_id": plan_id, "guest_id": guest, "guest_deleted": guest_del})
    with open(a.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"conformance: {len(steps)} steps ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
