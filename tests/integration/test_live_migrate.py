# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""live_migrate (check, real, check again) and hypervisor_info against virsh, on the lab."""

from __future__ import annotations

from conftest import Prober


def test_live_migrate_check_real_check_again(lab):
    guest = lab.add_guest("lm1", "hv1")
    try:
        args = {"guest": "lm1", "destination": "hv3"}
        check = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", args, check=True)["hv1"]
        assert check["changed"] is True and "outcome" not in check
        assert [(m["guest"], m["destination"], m["action"]) for m in check["plan"]["moves"]] == [("lm1", "hv3", "migrate")]
        assert lab.defined_on("lm1") == ["hv1"]

        prober = Prober(guest)
        prober.start()
        real = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", args)["hv1"]
        prober.stop()
        assert not real.get("failed"), real.get("msg")
        assert real["changed"] is True and real["outcome"]["outcome"] == "migrated"
        assert real["outcome"]["downtime_ms"] >= 0 and real["outcome"]["bytes_transferred"] > 0
        assert lab.running_on("lm1") == ["hv3"] and lab.defined_on("lm1") == ["hv3"]
        assert 'host="hv1"' in lab.record("hv3", "lm1")
        lab.assert_kept_answering(prober)

        again = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", args, check=True)["hv1"]
        assert again["changed"] is False and again["msg"] == "lm1 already runs on hv3"
    finally:
        lab.remove_guest("lm1")


def test_hypervisor_info_matches_virsh(lab):
    facts = lab.ansible("hv2", "hostmaint.libvirt.hypervisor_info")["hv2"]
    info = facts["hypervisor"]
    assert facts["changed"] is False
    assert info["hostname"] == "hv2" and info["name"] == "hv2"
    version = lab.virsh("hv2", "version").stdout
    assert "library: libvirt %s" % info["libvirt_version"] in version.replace("Using library", "library")
    assert "QEMU %s" % info["qemu_version"] in version
    assert "<uuid>%s</uuid>" % info["uuid"] in lab.virsh("hv2", "capabilities").stdout
    assert "br0" in info["bridges"]
    assert "pc" in info["machine_types"] and any(m.startswith("pc-i440fx-") for m in info["machine_types"])
    pools = dict((p["name"], p) for p in info["pools"])
    assert pools["lab-shared"]["shared"] is True and pools["default"]["shared"] is False
    assert 0 < info["memory_free_mib"] <= info["memory_total_mib"]
    assert info["maintenance"] is False and info["maintenance_info"] is None
    assert info["guests"] == len(lab.names("hv2", "--all"))


def test_a_guest_on_local_storage_moves_only_with_storage_copy(lab):
    guest = lab.add_guest("lm-local", "hv1", "--disk", "local")
    try:
        args = {"guest": "lm-local", "destination": "hv2"}
        blocked = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", args)["hv1"]
        assert blocked["failed"] is True and "lm-local" in blocked["msg"]
        assert [r["code"] for r in blocked["plan"]["blocked"][0]["reasons"]] == ["disk_not_shared"]
        assert lab.defined_on("lm-local") == ["hv1"]

        prober = Prober(guest)
        prober.start()
        copied = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", dict(args, allow_storage_copy=True))["hv1"]
        prober.stop()
        assert not copied.get("failed"), copied.get("msg")
        assert copied["plan"]["moves"][0]["storage_copy"] is True
        assert copied["outcome"]["outcome"] == "migrated"
        assert lab.running_on("lm-local") == ["hv2"] and lab.defined_on("lm-local") == ["hv2"]
        listing = lab.virsh("hv2", "vol-list", "default").stdout
        assert "/var/lib/libvirt/images/lm-local.qcow2" in listing
        # the source's copy is stale once the guest writes on hv2: deleted after its settle period (storage_copy_source)
        assert "lm-local.qcow2" not in lab.virsh("hv1", "vol-list", "default").stdout
        assert copied["outcome"]["source_disks_deleted"] == ["/var/lib/libvirt/images/lm-local.qcow2"]
        print(prober.summary())
        lab.kept_instance(prober)
    finally:
        lab.remove_guest("lm-local")
        lab.virsh("hv2", "vol-delete", "/var/lib/libvirt/images/lm-local.qcow2", check=False)
