# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab itself: it refuses what would touch the machine, and leaves nothing behind."""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import threading

from conftest import LAB_CMD, ROOT, lab_cli


# tests/lab/lab's namespaces carry HOSTMAINT_LAB_PREFIX (make test runs a second lab, from another copy, beside this)
PREFIX = os.environ.get("HOSTMAINT_LAB_PREFIX", "")
NAMESPACES = set(PREFIX + name for name in ("hvlab", "hvmig", "hvstore", "hv1", "hv2", "hv3"))


def netns():
    return set(subprocess.run(["ip", "netns", "list"], stdout=subprocess.PIPE, universal_newlines=True,
                              check=True).stdout.split())


def another_labs(pid):
    """Whether process ``pid`` lives in a network namespace of another lab (named, and not with this lab's prefix)."""
    names = subprocess.run(["ip", "netns", "identify", pid], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL,
                           universal_newlines=True, check=False).stdout.split()
    return bool(names) and not any(name in NAMESPACES for name in names)


def lab_processes():
    """Daemons and guests that run with the lab's files (its config, pid files, kernel)."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open("/proc/%s/cmdline" % pid, "rb") as fh:
                cmdline = fh.read().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if (os.path.join(ROOT, ".lab") in cmdline or "/run/libvirt/libvirtd.pid" in cmdline or "lab_name_hex=" in cmdline
                or "glusterd -p /run/glusterd.pid" in cmdline) and not another_labs(pid):
            found.append(cmdline)
    return found


def assert_nothing_left():
    assert not (netns() & NAMESPACES)
    assert not os.path.exists("/sys/class/net/%shvlab0" % PREFIX)
    assert not os.path.exists(os.path.join(ROOT, ".lab"))
    assert lab_processes() == []


def test_refuses_a_subnet_that_overlaps_the_machine():
    lab_cli("down")
    routes = subprocess.run(["ip", "-4", "-o", "route"], stdout=subprocess.PIPE, universal_newlines=True,
                            check=True).stdout
    own = next(ipaddress.ip_network(line.split()[0]) for line in routes.splitlines() if not line.startswith("default"))
    before = netns()
    proc = lab_cli("up", "--subnet", str(own), check=False)
    assert proc.returncode == 1
    assert "overlaps this machine's own routes" in proc.stderr and str(own) in proc.stderr
    assert netns() == before
    lab_cli("down")
    assert_nothing_left()


def test_down_cleans_up_after_a_crash_half_way_through_up():
    lab_cli("down")
    # Killed once hv1 is up: namespaces, veths, mounts, daemons and files all exist by then, and `up`
    # still has hv2 and hv3 to start (seconds each). The whole process group dies, as in a crash of the
    # controller; the daemons it started (they detach) are left running for `down` to find.
    proc = subprocess.Popen([LAB_CMD, "up", "--hosts", "3"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            universal_newlines=True, start_new_session=True)
    watchdog = threading.Timer(240, os.killpg, (proc.pid, signal.SIGKILL))  # bounded: up never got to hv1
    watchdog.start()
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if "hv1 up at" in line:
            break
    watchdog.cancel()
    assert proc.poll() is None, "up ended before it could be killed half-way: %s" % "".join(seen)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(10)
    proc.stderr.close()
    assert not os.path.exists(os.path.join(ROOT, ".lab", "inventory.yml")), "up got to its end before the kill"
    assert set(PREFIX + name for name in ("hvlab", "hv1", "hv2", "hv3")) <= netns()
    assert lab_processes(), "hv1's daemons should be running"
    lab_cli("down")
    assert_nothing_left()
    # running it again is fine
    assert lab_cli("down").returncode == 0
    assert_nothing_left()
