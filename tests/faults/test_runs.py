# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Runs that are stopped, that meet migrations already under way, that lack room or trust, on the lab: each
case ends with the invariant (tests/faults/invariant.py) and, where the job was left unfinished, a re-run."""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time

import pytest

import invariant
from conftest import finish_playbook, incoming, libvirtd, result_of, start_ad_hoc, start_playbook, wait_for
from labkit import ROOT, kit

EVACUATE = "playbooks/evacuate.yml"
RESTORE = "playbooks/restore.yml"
STOP = "playbooks/stop.yml"


def add(lab, names, host="hv1", *extra):
    return dict((name, lab.add_guest(name, host, *extra)) for name in names)


def guests_on(lab, host):
    return lab.names(host)


def held(lab, host):
    return "hostmaint:hold" in lab.virsh(host, "secret-list").stdout


def in_flight(lab, names, hosts=("hv2", "hv3")):
    for host in hosts:
        found = [n for n in incoming(lab, host) if n in names]
        if found:
            return found[0], host
    return None


@pytest.mark.case("cancel", "stop.yml during an evacuation: the migration in flight is aborted, the rest stay", 240)
def test_stop_playbook_stops_an_evacuation(clean, case):
    lab = clean
    names = ["c1a", "c1b", "c1c"]
    add(lab, names, "hv1", "--dirty", "16")
    before = invariant.snapshot(lab)
    proc = start_playbook(EVACUATE, "-l", "hv1", "-e", "hostmaint_libvirt_max_outbound=1",
                          "-e", "hostmaint_libvirt_bandwidth_mib=24")
    guest, dest = wait_for("a migration from hv1", lambda: in_flight(lab, names))
    asked = time.time()
    stop = kit.ansible_playbook(STOP, "-l", "hv1", "-e", '{"stop_reason": "window closed"}')
    stopped_in = time.time() - asked
    case.note("stop.yml -l hv1 while %s migrated to %s: rc %d in %.1f s" % (guest, dest, stop.returncode, stopped_in))
    assert stop.returncode == 0, stop.stdout[-3000:]
    said = " ".join(stop.stdout.split())  # the YAML callback folds long lines
    assert "the evacuation of hv1 stopped because an operator asked it to stop (window closed)" in said, said[-3000:]
    rc, out = finish_playbook(proc)
    assert rc != 0 and "stopped because an operator asked it to stop" in " ".join(out.split()), out[-3000:]
    assert stopped_in < 40, "the run took %.0f s to stop (bound: 30 s abort grace + 10 s)" % stopped_in
    assert guest in guests_on(lab, "hv1"), "the guest whose migration was stopped must stay on hv1"
    invariant.assert_holds(lab, before, marks={"hv1"})
    left = guests_on(lab, "hv1")
    case.note("moved before the stop: %s; stayed on hv1: %s" % (sorted(set(names) - set(left)), sorted(left)))
    again = kit.ansible_playbook(EVACUATE, "-l", "hv1")
    assert again.returncode == 0, again.stdout[-3000:]
    invariant.assert_holds(lab, before, marks={"hv1"})
    assert not guests_on(lab, "hv1")


def interrupt_restore(lab, case, names, sig, before):
    """restore.yml -l hv1 (slowed), sig sent to ansible-playbook once a guest is on its way home; the run
    stops and releases hv1 within its bound, and every guest stays where it runs."""
    proc = start_playbook(RESTORE, "-l", "hv1", "-e", "hostmaint_libvirt_bandwidth_mib=24")
    guest, _home = wait_for("a migration to hv1", lambda: in_flight(lab, names, hosts=("hv1",)) and
                            in_flight(lab, names, hosts=("hv1",)))
    proc.send_signal(sig)
    asked = time.time()
    rc, out = finish_playbook(proc)
    wait_for("hv1's hold to be released", lambda: not held(lab, "hv1"), within=60, every=0.5)
    stopped_in = time.time() - asked
    case.note("%s to restore.yml while %s was on its way home: rc %d, hv1 released %.1f s later" % (
        signal.Signals(sig).name, guest, rc, stopped_in))
    assert rc != 0, out[-3000:]
    log = kit.lab_cli("exec", "hv1", "sh", "-c", "cat $(ls -t /var/lib/libvirt/hostmaint/runs/*.json | head -1)").stdout
    assert "the controller went away" in log, log[:2000]
    assert stopped_in < 40
    invariant.assert_holds(lab, before, marks={"hv1"} if "hostmaint:maintenance" in lab.virsh(
        "hv1", "secret-list").stdout else set())


@pytest.mark.case("cancel", "Ctrl-C (SIGINT), then SIGTERM on the re-run, to ansible-playbook restore.yml: each run "
                  "stops, guests stay put", 300)
def test_interrupting_a_restore_stops_it(clean, case):
    lab = clean
    names = ["c2a", "c2b", "c2c"]
    add(lab, names, "hv1", "--dirty", "16")
    first = kit.ansible_playbook(EVACUATE, "-l", "hv1")
    assert first.returncode == 0, first.stdout[-3000:]
    before = invariant.snapshot(lab)
    interrupt_restore(lab, case, names, signal.SIGINT, before)  # what Ctrl-C sends
    interrupt_restore(lab, case, names, signal.SIGTERM, before)  # the re-run: what kill and service managers send
    again = kit.ansible_playbook(RESTORE, "-l", "hv1")
    assert again.returncode == 0, again.stdout[-3000:]
    invariant.assert_holds(lab, before)
    assert sorted(guests_on(lab, "hv1")) == sorted(names)


@pytest.mark.case("overlap", "an evacuation waits for a migration already under way into its host, then moves it too",
                  240)
def test_an_evacuation_waits_for_a_migration_into_its_host(clean, case):
    lab = clean
    add(lab, ["o1"], "hv1", "--dirty", "8")
    add(lab, ["o2"], "hv2")
    before = invariant.snapshot(lab)
    # an operator's own migration into hv2, held back (4 MiB/s for a guest rewriting 8 MiB/s) until hv2's
    # evacuation has started; then it is let go and lands
    manual = subprocess.Popen([kit.LAB_CMD, "exec", "hv1", "virsh", "migrate", "--live", "--p2p", "--persistent",
                               "--undefinesource", "--tls", "--bandwidth", "4", "o1", "qemu+tls://hv2/system"],
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)
    wait_for("o1's migration into hv2", lambda: "o1" in incoming(lab, "hv2"))
    proc = start_ad_hoc("hv2", "hostmaint.libvirt.evacuate", {})
    try:
        wait_for("hv2's maintenance mark", lambda: lab.in_maintenance("hv2") or proc.poll() is not None, within=60,
                 every=0.2)
    finally:
        if proc.poll() is not None or not lab.in_maintenance("hv2"):
            lab.virsh("hv1", "domjobabort", "o1", check=False)
            raise AssertionError("hv2's evacuation did not start waiting: %s" % result_of(proc, "hv2"))
    time.sleep(4)
    assert "o1" in incoming(lab, "hv2"), "o1 landed before the test let it go"
    lab.virsh("hv1", "migrate-setspeed", "o1", "1000")
    case.note("o1 was migrating into hv2 when hv2's evacuation started; let go 4 s after hv2 was marked")
    result = result_of(proc, "hv2")
    manual.communicate(timeout=120)
    assert not result.get("failed"), result.get("msg")
    waited = [u for u in result["under_way"] if u["guest"] == "o1"]
    case.note("hv2's evacuation: %s" % "; ".join(u["reason"] for u in result["under_way"]))
    assert waited and waited[0]["action"] == "waited" and waited[0]["direction"] == "in", result["under_way"]
    assert not guests_on(lab, "hv2"), "a guest landed on hv2 during its evacuation"
    invariant.assert_holds(lab, before, marks={"hv2"})


@pytest.mark.case("fault", "9. restore.yml when the origin lacks room for some guests", 300)
def test_restore_short_of_room(clean, case):
    lab = clean
    names = ["r9a", "r9b", "r9c"]
    add(lab, names[:2], "hv1")
    add(lab, names[2:], "hv1", "--memory", "1024")  # room is made for the two small ones only
    first = kit.ansible_playbook(EVACUATE, "-l", "hv1")
    assert first.returncode == 0, first.stdout[-3000:]
    before = invariant.snapshot(lab)
    # room declared for the two small ones (700 MiB beside the reserve), whatever the machine's free memory, which
    # another lab on the machine moves
    short = lab.ansible("hv1", "hostmaint.libvirt.restore", {"capacity_mib": 1024 + 700, "reserve_mib": 1024})["hv1"]
    not_home = sorted(b["guest"] for b in short["plan"]["not_home"])
    came = sorted(o["guest"] for o in short.get("outcomes", []) if o["moved"])
    case.note("restore with room for two: %s came home, %s stayed (%s passes); rc failed=%s" % (
        came, not_home, short.get("passes"), short.get("failed")))
    assert short.get("failed") and not_home and came, short
    assert "did not come home" in short["msg"] and all(n in short["msg"] for n in not_home), short["msg"]
    assert sorted(guests_on(lab, "hv1")) == came
    invariant.assert_holds(lab, before)
    again = kit.ansible_playbook(RESTORE, "-l", "hv1")
    assert again.returncode == 0, again.stdout[-3000:]
    invariant.assert_holds(lab, before)
    assert sorted(guests_on(lab, "hv1")) == names


@pytest.mark.case("fault", "12a. a migration with storage copy aborted mid-copy", 240)
def test_storage_copy_aborted_mid_copy(clean, case):
    lab = clean
    add(lab, ["s12a"], "hv1", "--disk", "local")
    before = invariant.snapshot(lab)
    proc = subprocess.Popen([os.path.join(ROOT, ".venv", "bin", "ansible"), "-i", kit.INVENTORY, "hv1", "-m",
                             "hostmaint.libvirt.live_migrate", "-a",
                             '{"guest": "s12a", "destination": "hv2", "allow_storage_copy": true, "bandwidth_mib": 4}'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, cwd=ROOT)
    wait_for("s12a's copy to hv2", lambda: "s12a" in incoming(lab, "hv2"))
    time.sleep(2)
    lab.virsh("hv1", "domjobabort", "s12a")
    out = proc.communicate(timeout=120)[0]
    case.note("domjobabort during the disk copy: %s" % out.strip().splitlines()[-1][:300])
    assert "FAILED" in out and "s12a" in out
    invariant.assert_holds(lab, before)
    assert guests_on(lab, "hv1") == ["s12a"]
    left = lab.virsh("hv2", "vol-list", "default", check=False).stdout
    assert "s12a" not in left, "the destination keeps the copied disk: %s" % left


@pytest.mark.case("fault", "12b. a migration with storage copy whose destination pool is full", 240)
def test_storage_copy_to_a_full_pool(clean, case):
    lab = clean
    add(lab, ["s12b"], "hv1", "--disk", "local")
    before = invariant.snapshot(lab)
    pool = lab.virsh("hv2", "pool-dumpxml", "default").stdout.split("<path>")[1].split("</path>")[0]
    kit.lab_cli("exec", "hv2", "mount", "-t", "tmpfs", "-o", "size=64k", "full", pool)
    try:
        lab.virsh("hv2", "pool-refresh", "default")
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {
            "guest": "s12b", "destination": "hv2", "allow_storage_copy": True})["hv1"]
        case.note("live_migrate to hv2 with its pool full: %s" % result.get("msg"))
        assert result.get("failed") and "hv2" in result["msg"], result
        invariant.assert_holds(lab, before)
        assert guests_on(lab, "hv1") == ["s12b"]
    finally:
        kit.lab_cli("exec", "hv2", "umount", pool, check=False)
        lab.virsh("hv2", "pool-refresh", "default", check=False)


def openssl(*args, cwd):
    subprocess.run(["openssl"] + list(args), cwd=cwd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def server_cert(tmp, name, ca_cert, ca_key, cn, ip):
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", name + ".key", "-subj", "/CN=%s" % cn, "-out",
            name + ".csr", cwd=tmp)
    with open(os.path.join(tmp, name + ".ext"), "w") as handle:
        handle.write("subjectAltName=DNS:%s,IP:%s\nextendedKeyUsage=serverAuth,clientAuth\n" % (cn, ip))
    openssl("x509", "-req", "-in", name + ".csr", "-CA", ca_cert, "-CAkey", ca_key, "-CAcreateserial", "-days", "2",
            "-extfile", name + ".ext", "-out", name + ".pem", cwd=tmp)


@pytest.mark.case("fault", "10. TLS: a destination with a certificate from another CA, one whose name does not match, "
                           "a source without its client certificate", 400)
def test_tls_faults_move_nothing_and_name_the_host_and_cause(clean, case):
    lab = clean
    add(lab, ["t10"], "hv1")
    # hv3 in maintenance: hv2 is the only destination, so the plan must say why it cannot be used
    kit.lab_cli("exec", "hv3", "sh", "-c", "printf \"<secret ephemeral='no' private='no'><usage type='volume'>"
                "<volume>hostmaint:maintenance</volume></usage></secret>\" > /tmp/m.xml && virsh secret-define /tmp/m.xml")
    before = invariant.snapshot(lab)
    hosts = lab.hosts()
    pki = os.path.join(ROOT, ".lab", "pki")
    files = "/etc/pki/libvirt/servercert.pem /etc/pki/libvirt/private/serverkey.pem /etc/pki/CA/cacert.pem"
    kit.lab_cli("exec", "hv2", "sh", "-c", "for f in %s; do cp -p $f $f.orig; done" % files)
    with tempfile.TemporaryDirectory() as tmp:
        openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "other-ca.key", "-subj", "/CN=other CA",
                "-days", "2", "-out", "other-ca.pem", cwd=tmp)
        server_cert(tmp, "other", "other-ca.pem", "other-ca.key", "hv2", hosts["hv2"])
        server_cert(tmp, "wrong", os.path.join(pki, "ca.pem"), os.path.join(pki, "ca.key"), "not-hv2", "192.0.2.99")
        try:
            # a host set up with another CA (its own CA file included: libvirtd checks its certificate against
            # it at start), then a host whose certificate, from the right CA, names another host
            for kind, cause, ca in (("other", "certificate", os.path.join(tmp, "other-ca.pem")),
                                    ("wrong", "hv2", os.path.join(pki, "ca.pem"))):
                for src, dst in ((os.path.join(tmp, kind + ".pem"), "/etc/pki/libvirt/servercert.pem"),
                                 (os.path.join(tmp, kind + ".key"), "/etc/pki/libvirt/private/serverkey.pem"),
                                 (ca, "/etc/pki/CA/cacert.pem")):
                    with open(src) as handle:
                        subprocess.run([kit.LAB_CMD, "exec", "hv2", "sh", "-c", "cat > %s" % dst], stdin=handle,
                                       check=True)
                libvirtd("hv2", "restart")
                result = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
                case.note("hv2 with a %s certificate: %s" % (
                    "foreign CA's" if kind == "other" else "mismatched", result.get("msg", "")[:400]))
                assert result.get("failed") and "hv2" in result["msg"] and cause in result["msg"], result.get("msg")
                invariant.assert_holds(lab, before, marks={"hv3"})
        finally:
            kit.lab_cli("exec", "hv2", "sh", "-c", "for f in %s; do mv $f.orig $f; done" % files)
            libvirtd("hv2", "restart")
    kit.lab_cli("exec", "hv1", "mv", "/etc/pki/libvirt/clientcert.pem", "/etc/pki/libvirt/clientcert.pem.away")
    try:
        result = lab.ansible("hv1", "hostmaint.libvirt.evacuate")["hv1"]
        case.note("hv1 without its client certificate: %s" % result.get("msg", "")[:400])
        assert result.get("failed") and "hv2" in result["msg"] and "certificate" in result["msg"], result.get("msg")
        invariant.assert_holds(lab, before, marks={"hv3"})
    finally:
        kit.lab_cli("exec", "hv1", "mv", "/etc/pki/libvirt/clientcert.pem.away", "/etc/pki/libvirt/clientcert.pem")
    assert guests_on(lab, "hv1") == ["t10"]
