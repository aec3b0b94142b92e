# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tests' judge of a guest's life while it is probed: the same instance passes; a kernel fault of its
own, a restart from outside and a lost write of its memory check all fail."""

from __future__ import annotations

import time

import pytest

from conftest import Prober


def probe_while(lab, guest, action):
    """Probe the guest while `action` happens to it, until it answers as a new instance (at most 60 s)."""
    prober = Prober(guest)
    prober.start()
    action()
    deadline = time.time() + 60
    while len(prober.answers) < 2 and time.time() < deadline:
        time.sleep(0.2)
    return prober.stop()


def test_the_judge_fails_a_guest_panic_a_restart_from_outside_and_a_lost_write(lab):
    guest = lab.add_guest("fault1", "hv2")
    try:
        quiet = Prober(guest)
        quiet.start()
        time.sleep(2)
        quiet.stop()
        assert lab.kept_instance(quiet) is True and quiet.ok > 10 and quiet.failed == 0
        assert quiet.icmp["received"] > 50 and quiet.icmp["longest_gap_s"] < 0.5, quiet.summary()
        assert lab.assert_kept_answering(quiet) is True

        # paused for 1.5 s: the same instance, and HTTP may pass within its bounds, but the pings show the outage
        paused = Prober(guest)
        paused.start()
        time.sleep(0.5)
        lab.virsh("hv2", "suspend", "fault1")
        time.sleep(1.5)
        lab.virsh("hv2", "resume", "fault1")
        time.sleep(0.5)
        paused.stop()
        assert lab.kept_instance(paused) is True
        assert paused.icmp["longest_gap_s"] >= 1.5, paused.summary()
        with pytest.raises(AssertionError, match="fault1 stopped answering pings for longer than 1.0 s"):
            lab.assert_kept_answering(paused)

        # the guest's own kernel panics (an NMI, which lab guests treat as fatal) and it reboots itself
        panicked = probe_while(lab, guest, lambda: lab.virsh("hv2", "inject-nmi", "fault1"))
        assert len(panicked.answers) == 2 and panicked.failed > 0
        with pytest.raises(AssertionError, match="fault1: its console on hv2 shows .*Kernel panic"):
            lab.kept_instance(panicked)

        # reset from outside: a new boot id with no fault before it
        reset = probe_while(lab, guest, lambda: lab.virsh("hv2", "reset", "fault1"))
        assert len(reset.answers) == 2
        with pytest.raises(AssertionError, match=r"fault1 answered as another instance .* it was restarted"):
            lab.kept_instance(reset)
    finally:
        lab.remove_guest("fault1")


def test_the_judge_fails_a_guest_whose_memory_check_found_a_lost_write(lab):
    guest = lab.add_guest("fault2", "hv2", "--dirty", "5")
    try:
        prober = Prober(guest)
        prober.start()
        assert prober.memory_errors == 0
        time.sleep(0.5)
        prober.stop()
        assert lab.kept_instance(prober) is True
        # as the guest's check would on a page that arrived in an old state: the judge reads /memcheck
        prober.memory_errors = -1
        with pytest.raises(AssertionError, match="fault2's memory check found 1 lost writes"):
            lab.kept_instance(prober)
    finally:
        lab.remove_guest("fault2")
