# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.maintenance against hv1 of the lab: the mark set (check, real, check again), idempotent, refused
while a live run holds the host, and ended; judged by what virsh shows on hv1 (secret-list, secret-get-value)."""

from __future__ import annotations

import base64
import json
import uuid

import pytest

MODULE = "hostmaint.libvirt.maintenance"
HOLD_UUID = str(uuid.uuid4())
# a hold taken on another machine: no run can see from hv1 whether it still runs, so it counts as live
HOLD = dict(run_id="20261125T180000Z-it0001", action="evacuate", since="2026-11-25T18:00:00Z", node="elsewhere",
            boot_id="boot-elsewhere", pid=4242, started=1000)
HOLD_XML = ("<secret ephemeral='no' private='no'><uuid>%s</uuid><usage type='volume'><volume>hostmaint:hold</volume>"
            "</usage></secret>" % HOLD_UUID)


def secrets(lab, host, usage):
    """The UUIDs of host's libvirt secrets of ``usage``, as virsh secret-list shows them."""
    return [line.split()[0] for line in lab.virsh(host, "secret-list").stdout.splitlines() if usage in line]


def mark_on(lab, host):
    """The maintenance mark's value on host, read with virsh (None when there is none)."""
    found = secrets(lab, host, "hostmaint:maintenance")
    if not found:
        return None
    assert len(found) == 1, found  # libvirt keeps one secret per usage
    return json.loads(base64.b64decode(lab.virsh(host, "secret-get-value", found[0]).stdout.strip()))


def hold(lab, host):
    lab.cli("exec", host, "sh", "-c", "printf \"%s\" > /tmp/hold.xml && virsh secret-define /tmp/hold.xml" % HOLD_XML)
    lab.virsh(host, "secret-set-value", HOLD_UUID, base64.b64encode(json.dumps(HOLD).encode()).decode())


def release(lab, host):
    for found in secrets(lab, host, "hostmaint:hold"):
        lab.virsh(host, "secret-undefine", found, check=False)


@pytest.fixture()
def unmarked(lab):
    lab.clear_maintenance("hv1")
    release(lab, "hv1")
    yield lab
    release(lab, "hv1")
    lab.clear_maintenance("hv1")


def test_set_idempotent_refused_while_held_and_ended(unmarked):
    lab = unmarked
    assert mark_on(lab, "hv1") is None

    # check, real, check again: changed, changed, unchanged; virsh shows the mark only after the real run
    check = lab.ansible("hv1", MODULE, {"reason": "lab batch"}, check=True)["hv1"]
    assert not check.get("failed") and check["changed"] is True, check
    assert check["maintenance"]["reason"] == "lab batch" and check["msg"] == "would mark hv1 in maintenance (lab batch)"
    assert mark_on(lab, "hv1") is None and not lab.in_maintenance("hv1")

    real = lab.ansible("hv1", MODULE, {"reason": "lab batch"})["hv1"]
    assert not real.get("failed") and real["changed"] is True, real
    assert real["msg"] == "hv1 is marked in maintenance (lab batch)"
    assert sorted(real["maintenance"]) == ["by", "reason", "run_id", "since"]
    assert (real["maintenance"]["reason"], real["maintenance"]["by"]) == ("lab batch", MODULE)
    assert mark_on(lab, "hv1") == real["maintenance"]  # what the module says is what libvirt holds
    info = lab.ansible("hv1", "hostmaint.libvirt.hypervisor_info")["hv1"]["hypervisor"]
    assert info["maintenance"] is True and info["maintenance_info"] == real["maintenance"]

    again = lab.ansible("hv1", MODULE, {"reason": "lab batch"}, check=True)["hv1"]
    assert not again.get("failed") and again["changed"] is False and again["maintenance"] == real["maintenance"], again
    same = lab.ansible("hv1", MODULE, {"reason": "another reason"})["hv1"]
    assert not same.get("failed") and same["changed"] is False, same
    assert same["msg"] == "hv1 is already marked in maintenance (lab batch)"
    assert mark_on(lab, "hv1") == real["maintenance"] and len(secrets(lab, "hv1", "hostmaint:maintenance")) == 1

    # a live run holds hv1: it owns the mark, and ending it is refused naming the run and since when
    hold(lab, "hv1")
    refused = lab.ansible("hv1", MODULE, {"state": "absent"})["hv1"]
    assert refused.get("failed") is True, refused
    assert refused["msg"].startswith("cannot end the maintenance of hv1: run 20261125T180000Z-it0001 (evacuate) holds "
                                     "it since 2026-11-25T18:00:00Z and owns its mark"), refused["msg"]
    assert "\n" not in refused["msg"]
    assert mark_on(lab, "hv1") == real["maintenance"] and secrets(lab, "hv1", "hostmaint:hold") == [HOLD_UUID]
    release(lab, "hv1")

    # ended: check, real, check again
    check = lab.ansible("hv1", MODULE, {"state": "absent"}, check=True)["hv1"]
    assert not check.get("failed") and check["changed"] is True and check["maintenance"] is None, check
    assert mark_on(lab, "hv1") == real["maintenance"]
    ended = lab.ansible("hv1", MODULE, {"state": "absent"})["hv1"]
    assert not ended.get("failed") and ended["changed"] is True and ended["maintenance"] is None, ended
    assert ended["msg"] == "the maintenance of hv1 is ended"
    assert mark_on(lab, "hv1") is None and not lab.in_maintenance("hv1")
    again = lab.ansible("hv1", MODULE, {"state": "absent"}, check=True)["hv1"]
    assert not again.get("failed") and again["changed"] is False and again["msg"] == "hv1 carries no maintenance mark"


def test_a_peer_marked_by_the_module_is_no_destination(unmarked):
    """What a rolling upgrade does before a batch plans: the peer marked (delegated to it) receives nothing."""
    lab = unmarked
    lab.clear_maintenance("hv2")
    lab.add_guest("mm1", "hv2")
    try:
        marked = lab.ansible("hv1", MODULE, {"reason": "next batch"})["hv1"]
        assert not marked.get("failed") and marked["changed"] is True, marked
        preflight = lab.ansible("hv2", "hostmaint.libvirt.migration_preflight")["hv2"]
        assert not preflight.get("failed"), preflight
        codes = [p["code"] for p in preflight["verdicts"]["mm1"]["hv1"]["problems"]]
        assert "maintenance" in codes and [m["destination"] for m in preflight["plan"]["moves"]] == ["hv3"]
    finally:
        lab.remove_guest("mm1")
