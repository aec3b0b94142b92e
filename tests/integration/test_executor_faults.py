# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The executor under faults, on the lab: a guest reset right after it lands is reported failed and stops the
run; a guest that goes deaf is caught by its probe; guests started during an evacuation are moved too. (A
destination whose libvirtd dies mid-run is fault 1 of the fault suite, tests/faults/test_faults.py.)"""

from __future__ import annotations

import json
import time

import pytest

from conftest import Prober, result_of, start_ad_hoc


def incoming(lab, host):
    """Guests libvirt lists on host (an incoming migration shows as paused there)."""
    return lab.names(host, "--all", check=False)


@pytest.fixture()
def marks_cleared(lab):
    yield
    lab.clear_maintenance()


def test_a_guest_reset_right_after_it_lands_is_reported_failed_and_stops_the_run(lab, marks_cleared):
    names = ["rs1", "rs2", "rs3"]
    probers = dict((name, Prober(lab.add_guest(name, "hv1"))) for name in names)
    try:
        for prober in probers.values():
            prober.start()
        proc = start_ad_hoc("hv1", "hostmaint.libvirt.evacuate", {"max_outbound": 1, "max_inbound": 1, "settle_s": 8})
        deadline = time.time() + 120
        victim = None
        while time.time() < deadline and victim is None:
            for host in ("hv2", "hv3"):
                running = lab.names(host, "--state-running", check=False)
                landed = [n for n in names if n in running]
                if landed:
                    victim = (landed[0], host)
                    break
            time.sleep(0.05)
        assert victim, "no guest landed"
        lab.virsh(victim[1], "reset", victim[0])
        result = result_of(proc, "hv1")
        outcomes = dict((o["guest"], o) for o in result["outcomes"])
        print(json.dumps(outcomes, indent=1)[:4000])
        assert result["failed"] is True
        bad = outcomes[victim[0]]
        assert bad["outcome"] == "failed" and bad["moved"] is False
        assert "%s was reset" % victim[0] in bad["reason"] and "after switchover on %s" % victim[1] in bad["reason"]
        assert victim[0] in result["msg"]
        # nothing more started after the failure
        assert all(o["outcome"] in ("not_run", "migrated", "failed") for o in outcomes.values())
        assert any(o["outcome"] == "not_run" for o in outcomes.values()), outcomes
        for name, outcome in outcomes.items():
            if outcome["outcome"] == "not_run":
                assert lab.running_on(name) == ["hv1"] and "the run stopped after" in outcome["reason"]
        assert lab.running_on(victim[0]) == [victim[1]] and lab.defined_on(victim[0]) == [victim[1]]
        # the reset was the test's own doing; every other guest kept its instance
        for name, prober in probers.items():
            prober.stop()
            if name != victim[0]:
                print(prober.summary())
                lab.kept_instance(prober)
    finally:
        for name in names:
            lab.remove_guest(name)


def test_a_guest_started_on_the_host_while_it_is_emptied_is_moved_too(lab, marks_cleared):
    names = ["la1", "la2", "la3", "la4"]
    for name in names:
        lab.add_guest(name, "hv1")
    try:
        # one move at a time with a long settle, so that the run is still busy when the new guest starts
        proc = start_ad_hoc("hv1", "hostmaint.libvirt.evacuate", {"max_outbound": 1, "max_inbound": 1, "settle_s": 8})
        deadline = time.time() + 120
        while time.time() < deadline and not set(names) & set(incoming(lab, "hv2") + incoming(lab, "hv3")):
            time.sleep(0.1)
        late = lab.add_guest("la-late", "hv1")
        prober = Prober(late)
        prober.start()
        result = result_of(proc, "hv1")
        prober.stop()
        outcomes = dict((o["guest"], o) for o in result["outcomes"])
        print(json.dumps(result.get("late_arrivals")), json.dumps(outcomes.get("la-late"), indent=1))
        assert result["failed"] is False, result.get("msg")
        assert result["late_arrivals"] == ["la-late"] and result["empty"] is True
        assert outcomes["la-late"]["outcome"] == "migrated"
        assert lab.running_on("la-late") in (["hv2"], ["hv3"]) and lab.defined_on("la-late") == lab.running_on("la-late")
        assert lab.names("hv1", "--all") == []
        lab.assert_kept_answering(prober)
    finally:
        for name in names + ["la-late"]:
            lab.remove_guest(name)


def test_a_guest_whose_service_does_not_answer_after_it_lands_is_reported_failed(lab):
    good = lab.add_guest("pr1", "hv1")
    deaf = lab.add_guest("pr2", "hv1")
    try:
        # pr1 carries its probe in its settings metadata; pr2's comes from the option, on a port nothing serves
        lab.virsh("hv1", "metadata", "pr1", "--uri", "urn:hostmaint:libvirt:settings:1", "--key", "hostmaint",
                  "--set", '<settings probe="http://%s/"/>' % good["address"], "--live", "--config")
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {"guest": "pr1", "destination": "hv2"})["hv1"]
        assert result.get("failed") is not True, result
        assert result["outcome"]["outcome"] == "migrated" and lab.running_on("pr1") == ["hv2"]

        url = "tcp://%s:81" % deaf["address"]
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate",
                             {"guest": "pr2", "destination": "hv3", "probes": {"pr2": url}})["hv1"]
        assert result.get("failed") is True
        outcome = result["outcome"]
        assert outcome["outcome"] == "failed" and outcome["moved"] is False
        assert outcome["reason"].startswith("pr2 did not answer %s within 5 s after switchover on hv3 (" % url)
        # it landed and runs there, defined once: the operator sees where it is and why it is suspect
        assert lab.running_on("pr2") == ["hv3"] and lab.defined_on("pr2") == ["hv3"]
        # a malformed probe is one sentence, and nothing moves
        bad = lab.ansible("hv3", "hostmaint.libvirt.live_migrate",
                          {"guest": "pr2", "destination": "hv1", "probes": {"pr2": "pr2:80"}})["hv3"]
        assert bad.get("failed") is True and bad["msg"] == "probe 'pr2:80' of guest pr2 in probes must start with tcp:// or http://"
        assert lab.running_on("pr2") == ["hv3"]
    finally:
        lab.remove_guest("pr1")
        lab.remove_guest("pr2")
