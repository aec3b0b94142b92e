# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A real QEMU live migration between two lab hosts while the guest answers HTTP."""

from __future__ import annotations

import time

from conftest import Prober, lab_cli


def bridge_addresses(lab):
    return dict((h, lab_cli("exec", h, "cat", "/sys/class/net/br0/address").stdout.strip()) for h in lab.hosts())


def test_live_migration_from_hv1_to_hv2_keeps_the_guest_answering(lab):
    bridges = bridge_addresses(lab)
    guest = lab.add_guest("smoke1", "hv1")
    hosts = lab.hosts()
    assert lab.running_on("smoke1") == ["hv1"]
    prober = Prober(guest)
    prober.start()
    time.sleep(1)
    started = time.time()
    # what an operator types on a set-up cluster: TLS for control and data
    lab.virsh("hv1", "migrate", "--live", "--p2p", "--tls", "--persistent", "--undefinesource", "smoke1",
              "qemu+tls://%s/system" % hosts["hv2"])
    took = time.time() - started
    time.sleep(1)
    prober.stop()
    print("smoke migration: %.2f s wall" % took)
    assert lab.running_on("smoke1") == ["hv2"]
    assert lab.defined_on("smoke1") == ["hv2"]
    status = dict((g["name"], g) for g in lab.status()["guests"])
    assert status["smoke1"]["host"] == "hv2" and status["smoke1"]["state"] == "running"
    # one instance throughout: the same boot id before and after, and it kept answering
    lab.assert_kept_answering(prober)
    assert prober.ok > 20 and prober.icmp["received"] > 100, prober.summary()  # it was probed all along
    lab.remove_guest("smoke1")
    assert lab.defined_on("smoke1") == []
    # guests' taps coming and going never change a host's own address under its peers' ARP caches
    assert bridge_addresses(lab) == bridges
