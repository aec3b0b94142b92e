# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""playbooks/setup.yml on the lab (the session fixture ran it on bare hosts): a TLS cluster with a migration
network and shared storage, idempotent, honest in check mode, and refusing bad input before it changes anything."""

from __future__ import annotations

import json
import socket
import subprocess

import pytest

from conftest import ROOT, ansible_playbook, lab_cli, machine_files, recap

HOSTS = ("hv1", "hv2", "hv3")


def host_file(host, path):
    return lab_cli("exec", host, "cat", path, check=False).stdout


def host_state(lab):
    """What the setup roles manage, as each host has it: configuration files and the pools and networks."""
    state = {}
    for host in HOSTS:
        files = dict((path, host_file(host, path)) for path in (
            "/etc/hosts", "/etc/libvirt/qemu.conf", "/etc/libvirt/libvirtd.conf", "/etc/default/libvirtd",
            "/etc/nftables.d/hostmaint-libvirt.nft", "/etc/pki/libvirt/servercert.pem", "/etc/pki/qemu/client-cert.pem"))
        files["pools"] = lab.virsh(host, "pool-list", "--all").stdout
        state[host] = files
    return state


def test_setup_made_a_tls_cluster_and_left_the_machine_alone(lab):
    # the first run, on bare hosts, changed every host; the machine's own configuration is as it was
    assert all(counts["changed"] > 0 and counts["failed"] == 0 for counts in recap(lab.setup_output).values())
    assert machine_files() == lab.machine_before
    hosts = lab.hosts()
    for source in HOSTS:
        for dest in HOSTS:
            if source == dest:
                continue
            # libvirt over TLS from every host to every other, by address and by name
            for target in (hosts[dest], dest):
                proc = lab_cli("exec", source, "virsh", "-c", "qemu+tls://%s/system" % target, "hostname", check=False)
                assert proc.returncode == 0 and proc.stdout.strip() == dest, (source, target, proc.stderr)
            # plaintext libvirt is closed
            proc = lab_cli("exec", source, "timeout", "3", "virsh", "-c", "qemu+tcp://%s/system" % hosts[dest], "hostname",
                           check=False)
            assert proc.returncode != 0
    for host in HOSTS:
        qemu_conf = host_file(host, "/etc/libvirt/qemu.conf")
        for line in ('migrate_tls_x509_cert_dir = "/etc/pki/qemu"', "migrate_tls_x509_verify = 1", "migrate_tls_force = 1"):
            assert line in qemu_conf.splitlines(), (host, line)
        modes = lab_cli("exec", host, "stat", "-c", "%a %n", "/etc/pki/libvirt/private/serverkey.pem",
                        "/etc/pki/libvirt/private/clientkey.pem", "/etc/pki/qemu/server-key.pem",
                        "/etc/pki/qemu/client-key.pem").stdout.split("\n")
        assert all(line.startswith("600 ") for line in modes if line), modes
        # every peer by name
        for peer in HOSTS:
            assert "%s %s" % (hosts[peer], peer) in host_file(host, "/etc/hosts")
        # the bridge's MAC is pinned (set from user space), so ports cannot change it
        assert host_file(host, "/sys/class/net/br0/addr_assign_type").strip() == "3"


def test_the_cluster_ports_are_closed_to_other_machines(lab):
    """The controller is not a cluster host: the firewall drops its connections to libvirt's TLS port,
    while SSH stays open; a cluster host gets through."""
    address = lab.hosts()["hv2"]
    with pytest.raises(OSError):
        socket.create_connection((address, 16514), timeout=3).close()
    socket.create_connection((address, 22), timeout=3).close()
    proc = lab_cli("exec", "hv1", "timeout", "5", "bash", "-c", "echo > /dev/tcp/%s/16514" % address, check=False)
    assert proc.returncode == 0, proc.stderr


def changes(output):
    """The tasks of a playbook's output that changed or failed something, with their result lines."""
    found, task = [], None
    for line in output.splitlines():
        if line.startswith("TASK ["):
            task = line
        elif line.startswith(("changed:", "fatal:", "failed:")):
            found.append("%s\n  %s" % (task, line))
    return "\n".join(found) or output[-3000:]


def test_check_mode_on_a_set_up_cluster_finds_nothing_to_change(lab):
    # (a second real run changing nothing is the Molecule scenario setup's idempotence step)
    before = host_state(lab)
    check = ansible_playbook("playbooks/setup.yml", "--check", "--diff")
    assert check.returncode == 0, check.stdout[-3000:]
    assert all(c["changed"] == 0 and c["failed"] == 0 for c in recap(check.stdout).values()), changes(check.stdout)
    assert host_state(lab) == before


def test_migration_data_travels_over_the_migration_network_with_tls(lab):
    guest = lab.add_guest("net1", "hv1", "--memory", "256")
    status = dict((h["name"], h) for h in lab.status()["hosts"])
    try:
        # a migration without TLS for its data is refused by the hosts themselves
        proc = lab.virsh("hv1", "migrate", "--live", "--p2p", "net1", "qemu+tls://%s/system" % status["hv2"]["address"],
                         check=False)
        assert proc.returncode != 0 and "VIR_MIGRATE_TLS" in proc.stderr, proc.stderr
        assert lab.running_on("net1") == ["hv1"]

        def counters():
            return dict((iface, int(host_file("hv2", "/sys/class/net/%s/statistics/rx_bytes" % iface)))
                        for iface in ("mig0", "eth0"))

        before = counters()
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {"guest": "net1", "destination": "hv2"})["hv1"]
        after = counters()
        assert result.get("failed") is not True, result
        assert lab.running_on("net1") == ["hv2"] and lab.defined_on("net1") == ["hv2"]
        sent = result["outcome"]["bytes_transferred"]
        on_migration = after["mig0"] - before["mig0"]
        on_management = after["eth0"] - before["eth0"]
        print("migration of %d bytes: %d bytes in on hv2's mig0, %d on its management uplink"
              % (sent, on_migration, on_management))
        assert sent > 10 * 2 ** 20
        assert on_migration >= sent
        assert on_management < sent / 10
        assert guest["answer"].split()[0] == "net1"
    finally:
        lab.remove_guest("net1")


def test_a_guest_on_the_shared_pool_moves_without_being_declared_shared(lab):
    lab.add_guest("sh1", "hv1", "--disk", "shared")
    try:
        info = lab.ansible("hv1", "hostmaint.libvirt.guest_info", {"names": ["sh1"]})["hv1"]
        disk = info["guests"][0]["disks"][0]
        assert (disk["pool"], disk["shared"]) == ("lab-shared", True)
        # libvirt's own word (a netfs pool on GlusterFS), not the operator's: no VIR_MIGRATE_UNSAFE needed
        facts = lab.ansible("hv1", "hostmaint.libvirt.hypervisor_info")["hv1"]["hypervisor"]
        pool = dict((p["name"], p) for p in facts["pools"])["lab-shared"]
        assert (pool["type"], pool["shared"], pool["shared_by"]) == ("netfs", True, "pool type netfs")
        mounts = lab_cli("exec", "hv1", "findmnt", "-n", "-o", "FSTYPE", "--target", "/var/lib/libvirt/shared").stdout
        assert mounts.strip() == "fuse.glusterfs"
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", {"guest": "sh1", "destination": "hv3"})["hv1"]
        assert result.get("failed") is not True, result
        assert lab.running_on("sh1") == ["hv3"] and lab.defined_on("sh1") == ["hv3"]
        assert lab.virsh("hv3", "domblklist", "sh1").stdout.split()[-1] == "/var/lib/libvirt/shared/sh1.qcow2"
    finally:
        lab.remove_guest("sh1")


def run_setup_with(*extra):
    return ansible_playbook("playbooks/setup.yml", *extra)


@pytest.mark.parametrize("extra_vars, message", [
    ({"hypervisor_network_migration_interface": "mig9"},
     "hypervisor_network_migration_interface mig9 does not exist on hv1"),
    ({"hypervisor_network_bridges": [{"name": "br0"}, {"name": "brx"}]},
     "hypervisor_network_bridges: bridge brx does not exist on hv1"),
    ({"migration_tls_cert_days": 0}, "migration_tls_cert_days must be 1 or more, got 0 (host hv1)"),
    ({"migration_tls_ca_cert": "/nonexistent/ca.pem", "migration_tls_ca_key": "/nonexistent/ca.key"},
     "migration_tls_ca_cert /nonexistent/ca.pem does not exist on the controller (host hv1)"),
    ({"shared_storage_pools": [{"name": "notshared", "type": "dir", "path": "/var/lib/libvirt/images"}]},
     "shared_storage_pools: pool notshared's path /var/lib/libvirt/images is on"),
    ({"shared_storage_pools": [{"name": "nas", "type": "nfs", "path": "/srv/nas"}]},
     "shared_storage_pools: pool nas on hv1 needs host and source"),
    ({"migration_tls_renew_days": 400}, "migration_tls_renew_days must be 0 or more and less than migration_tls_cert_days"),
    ({"hypervisor_network_migration_port_min": 80}, "hypervisor_network_migration_port_min/max 80-49215 is not a port range"),
])
def test_bad_input_fails_naming_the_variable_and_the_host_and_changes_nothing(lab, extra_vars, message):
    before = host_state(lab)
    proc = run_setup_with("-l", "hv1", "-e", json.dumps(extra_vars))
    assert proc.returncode != 0
    assert message in " ".join(proc.stdout.split()), proc.stdout[-3000:]
    assert recap(proc.stdout)["hv1"]["changed"] == 0, proc.stdout[-3000:]
    assert host_state(lab) == before


def test_certificates_are_reissued_only_when_they_must_be(lab, changes_hosts):
    def cert(host):
        return host_file(host, "/etc/pki/libvirt/servercert.pem")

    def sans(host):
        text = lab_cli("exec", host, "certtool", "-i", "--infile", "/etc/pki/libvirt/servercert.pem").stdout
        return text

    first = dict((h, cert(h)) for h in HOSTS)
    # expiring within the threshold: a 365-day certificate is re-issued when renewal starts 366 days ahead
    renew = ansible_playbook("tests/integration/playbooks/migration_tls.yml", "-l", "hv2",
                             "-e", json.dumps({"migration_tls_cert_days": 400, "migration_tls_renew_days": 366}))
    assert renew.returncode == 0, renew.stdout[-3000:]
    assert cert("hv2") != first["hv2"] and cert("hv1") == first["hv1"]
    renewed = cert("hv2")
    # a current certificate is left alone
    again = ansible_playbook("tests/integration/playbooks/migration_tls.yml", "-l", "hv2")
    assert again.returncode == 0 and recap(again.stdout)["hv2"]["changed"] == 0, again.stdout[-3000:]
    assert cert("hv2") == renewed
    # a missing address is added
    extra = ansible_playbook("tests/integration/playbooks/migration_tls.yml", "-l", "hv2",
                             "-e", json.dumps({"migration_tls_extra_names": ["10.255.255.7", "hv2.example.test"]}))
    assert extra.returncode == 0, extra.stdout[-3000:]
    assert "10.255.255.7" in sans("hv2") and "hv2.example.test" in sans("hv2")
    # a missing certificate is made again
    lab_cli("exec", "hv2", "rm", "-f", "/etc/pki/libvirt/clientcert.pem")
    remake = ansible_playbook("tests/integration/playbooks/migration_tls.yml", "-l", "hv2")
    assert remake.returncode == 0, remake.stdout[-3000:]
    assert "BEGIN CERTIFICATE" in host_file("hv2", "/etc/pki/libvirt/clientcert.pem")
    proc = lab_cli("exec", "hv1", "virsh", "-c", "qemu+tls://hv2/system", "hostname", check=False)
    assert proc.stdout.strip() == "hv2", proc.stderr


def test_fleets_that_reach_peers_over_ssh_still_migrate(lab):
    """The qemu+ssh control path stays supported: the migration data still goes over TLS (the hosts insist)."""
    lab.add_guest("ssh1", "hv1")
    try:
        args = {"guest": "ssh1", "destination": "hv2", "uri_template": "qemu+ssh://root@{host}/system"}
        result = lab.ansible("hv1", "hostmaint.libvirt.live_migrate", args)["hv1"]
        assert result.get("failed") is not True, result
        assert result["outcome"]["outcome"] == "migrated"
        assert lab.running_on("ssh1") == ["hv2"] and lab.defined_on("ssh1") == ["hv2"]
        # asked for plaintext data, the destination refuses and the guest stays where it runs
        back = lab.ansible("hv2", "hostmaint.libvirt.live_migrate", dict(args, destination="hv1", tls=False))["hv2"]
        assert back.get("failed") is True and "VIR_MIGRATE_TLS" in back["msg"], back
        assert lab.running_on("ssh1") == ["hv2"] and lab.defined_on("ssh1") == ["hv2"]
    finally:
        lab.remove_guest("ssh1")


def test_a_destination_whose_name_does_not_resolve_is_blocked_until_setup_writes_it(lab, changes_hosts):
    lab.add_guest("dns1", "hv1")
    saved = host_file("hv1", "/etc/hosts")
    try:
        # what a host without the role's /etc/hosts block (or DNS) looks like
        lab_cli("exec", "hv1", "sed", "-i", "/hostmaint.libvirt cluster/,/hostmaint.libvirt cluster/d", "/etc/hosts")
        assert "hv2" not in host_file("hv1", "/etc/hosts")
        result = lab.ansible("hv1", "hostmaint.libvirt.migration_preflight")["hv1"]
        assert result["ready"] is False
        for dest in ("hv2", "hv3"):
            problems = result["verdicts"]["dns1"][dest]["problems"]
            assert [p["code"] for p in problems] == ["hostname_unresolvable"], problems
            assert problems[0]["message"] == ("cannot live-migrate dns1 to %s: %s's hostname %s does not resolve from hv1"
                                              % (dest, dest, dest))
        fixed = ansible_playbook("playbooks/setup.yml", "-l", "hv1")
        assert fixed.returncode == 0 and recap(fixed.stdout)["hv1"]["changed"] >= 1, fixed.stdout[-3000:]
        assert lab.ansible("hv1", "hostmaint.libvirt.migration_preflight")["hv1"]["ready"] is True
    finally:
        if "hv2" not in host_file("hv1", "/etc/hosts"):
            subprocess.run(["tests/lab/lab", "exec", "hv1", "sh", "-c", "cat > /etc/hosts"], input=saved, cwd=ROOT,
                           universal_newlines=True, check=False)
        lab.remove_guest("dns1")
