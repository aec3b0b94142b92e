# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The tests' judge of a guest's life while it is probed: the same instance, a kernel fault of its own
(reported, not failed), or a restart from outside (failed)."""

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


def test_a_guest_panic_is_a_warning_and_a_restart_from_outside_fails(lab):
    guest = lab.add_guest("fault1", "hv2")
    try:
        quiet = Prober(guest)
        quiet.start()
        time.sleep(1)
        quiet.stop()
        assert lab.kept_instance(quiet) is True and quiet.ok > 10 and quiet.failed == 0

        # the guest's own kernel panics (an NMI, which lab guests treat as fatal) and it reboots itself
        panicked = probe_while(lab, guest, lambda: lab.virsh("hv2", "inject-nmi", "fault1"))
        assert len(panicked.answers) == 2 and panicked.failed > 0
        with pytest.warns(UserWarning, match="fault1: its guest kernel faulted on hv2"):
            assert lab.kept_instance(panicked) is False

        # reset from outside: a new boot id with no fault before it
        reset = probe_while(lab, guest, lambda: lab.virsh("hv2", "reset", "fault1"))
        assert len(reset.answers) == 2
        with pytest.raises(AssertionError, match="console shows no kernel fault: it was restarted"):
            lab.kept_instance(reset)
    finally:
        lab.remove_guest("fault1")
