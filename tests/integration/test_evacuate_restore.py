# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Evacuate hv1 across hv2 and hv3 while every guest is probed over HTTP, then bring them home."""

from __future__ import annotations

import pytest

from conftest import Prober

GUESTS = ["ev1", "ev2", "ev3", "ev4"]


@pytest.fixture(scope="module")
def evacuees(lab):
    addresses = {}
    for name in GUESTS:
        extra = ("--disk", "shared") if name == "ev4" else ()
        addresses[name] = lab.add_guest(name, "hv1", *extra)
    yield addresses
    for name in GUESTS:
        lab.remove_guest(name)
    for host in ("hv1", "hv2", "hv3"):
        lab.virsh(host, "secret-undefine", "--secret", "hostmaint:maintenance", check=False)


def test_evacuate_then_restore(lab, evacuees):
    before = lab.placement()
    assert all(before[g] == "hv1" for g in GUESTS)

    # check mode: the plan, and nothing moves
    check = lab.ansible("hv1", "hostmaint.libvirt.evacuate", check=True)["hv1"]
    assert check["changed"] is True and "outcomes" not in check
    planned = dict((m["guest"], m["destination"]) for m in check["plan"]["moves"])
    assert sorted(planned) == GUESTS and set(planned.values()) == {"hv2", "hv3"}
    assert all(len(wave) <= 2 for wave in check["plan"]["waves"])
    assert lab.placement() == before and not lab.in_maintenance("hv1")

    probers = dict((g, Prober(evacuees[g]["address"])) for g in GUESTS)
    for prober in probers.values():
        prober.start()
    result = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    for prober in probers.values():
        prober.stop()
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["empty"] is True and result["remaining"] == []

    # where virsh says each guest runs: the plan's destination, and nowhere else
    after = lab.placement()
    for guest in GUESTS:
        assert after[guest] == planned[guest], guest
        assert lab.defined_on(guest) == [planned[guest]]
        assert 'host="hv1"' in lab.record(planned[guest], guest)
    assert set(after[g] for g in GUESTS) == {"hv2", "hv3"}
    assert lab.in_maintenance("hv1")
    # the report's numbers
    outcomes = dict((o["guest"], o) for o in result["outcomes"])
    for guest in GUESTS:
        outcome = outcomes[guest]
        assert outcome["outcome"] == "migrated" and outcome["destination"] == planned[guest]
        assert outcome["bytes_transferred"] > 1024 * 1024 and outcome["iterations"] >= 1
        assert 0 <= outcome["downtime_ms"] < 2000 and outcome["duration_s"] > 0
    assert result["summary"]["moved"] == 4 and result["summary"]["failed"] == 0
    # the guests kept answering, as the same instances
    for guest, prober in probers.items():
        print("%s: %d probes ok, %d failed, longest gap %.0f ms, downtime %s ms, %.2f s"
              % (guest, prober.ok, prober.failed, prober.longest_gap * 1000, outcomes[guest]["downtime_ms"],
                 outcomes[guest]["duration_s"]))
        assert prober.answers == {evacuees[guest]["answer"]}
        assert prober.failed <= 5 and prober.longest_gap < 3.0

    # again: nothing to do
    again = lab.ansible("hv1", "hostmaint.libvirt.evacuate", check=True)["hv1"]
    assert again["changed"] is False and again["plan"]["moves"] == []
    again = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
    assert again["changed"] is False and again["empty"] is True

    # hv1 in maintenance receives nothing, even from an evacuation of another host
    hv2_preflight = lab.ansible("hv2", "hostmaint.libvirt.migration_preflight")["hv2"]
    for guest, per_destination in hv2_preflight["verdicts"].items():
        codes = [p["code"] for p in per_destination["hv1"]["problems"]]
        assert "maintenance" in codes, guest

    # restore: check, real, check again
    check = lab.ansible("hv1", "hostmaint.libvirt.restore", check=True)["hv1"]
    assert check["changed"] is True
    assert sorted(m["guest"] for m in check["plan"]["moves"]) == GUESTS
    assert lab.placement() == after
    probers = dict((g, Prober(evacuees[g]["address"])) for g in GUESTS)
    for prober in probers.values():
        prober.start()
    result = lab.ansible("hv1", "hostmaint.libvirt.restore")["hv1"]
    for prober in probers.values():
        prober.stop()
    assert not result.get("failed"), result.get("msg")
    assert result["changed"] is True and result["maintenance_cleared"] is True
    assert sorted(result["records_cleared"]) == GUESTS
    home = lab.placement()
    for guest in GUESTS:
        assert home[guest] == "hv1" and lab.defined_on(guest) == ["hv1"]
        assert lab.record("hv1", guest) is None
        assert probers[guest].answers == {evacuees[guest]["answer"]}
        assert probers[guest].failed <= 5
    assert not lab.in_maintenance("hv1")
    again = lab.ansible("hv1", "hostmaint.libvirt.restore", check=True)["hv1"]
    assert again["changed"] is False and again["plan"]["moves"] == []
