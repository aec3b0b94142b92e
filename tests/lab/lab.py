"""The hostmaint lab: real libvirt hypervisors on one machine.

Each host hvN is a network namespace plus a private mount and UTS namespace running its own
virtlogd, libvirtd and sshd, with a bridge br0 that carries the host's address (its uplink is a
veth into the lab's switch, a bridge in a namespace of its own). The controller reaches the lab
through one veth from the root namespace. Guests are tiny TCG Linux guests that answer HTTP.

Everything the lab writes lives under .lab/ (state, host folders, keys, inventory) and .cache/lab/
(the guest kernel and initramfs, kept across `down`; `down --purge` removes it too).

`save NAME` keeps what the hosts are now (their private folders, nftables rules and started pools, and the
controller's CA) under .lab/saved/NAME; `reset NAME` puts the lab back into it in seconds: every guest
removed, the folders and rules back, libvirtd restarted. `up` saves `bare`; the tests save `setup` after
playbooks/setup.yml, and the Molecule scenarios start from it.

Standard library only: it runs before the project's venv exists.
"""

import argparse
import datetime
import fcntl
import ipaddress
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import uuid
import xml.etree.ElementTree as ET
from xml.sax.saxutils import escape as xml_escape

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LAB = os.path.join(ROOT, ".lab")
CACHE = os.path.join(ROOT, ".cache", "lab")
GUEST_SRC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "guest")
STATE = os.path.join(LAB, "state.json")
# HOSTMAINT_LAB_PREFIX (default empty): a prefix for every name the lab gives the machine (network namespaces, the
# controller's veth), so that a second lab, run from another copy of the tree (its own .lab), can be up beside the
# first: make test runs two at once. Its hosts keep their names (hv1...) in its inventory; only the namespaces differ.
PREFIX = os.environ.get("HOSTMAINT_LAB_PREFIX", "")
if not re.match(r"^[a-z0-9]{0,3}-?$", PREFIX):
    sys.exit("lab: HOSTMAINT_LAB_PREFIX must be up to 3 letters or digits and an optional dash, got %r" % PREFIX)
SWITCH_NS = PREFIX + "hvlab"
MIGRATION_NS = PREFIX + "hvmig"
STORAGE_NS = PREFIX + "hvstore"
STORAGE_NAME = "store1"
STORAGE_VOLUME = "labshared"
CTL_VETH = PREFIX + "hvlab0"
HOST_RE = re.compile(r"^hv[0-9]+$")
SUBNET_CANDIDATES = ("10.213.7.0/24", "10.231.77.0/24", "172.30.213.0/24", "192.168.213.0/24")
MIGRATION_SUBNET_CANDIDATES = ("10.213.8.0/24", "10.231.78.0/24", "172.30.214.0/24", "192.168.214.0/24")
MIGRATION_IFACE = "mig0"
SHARED_DIR = "/var/lib/libvirt/shared"
SHARED_POOL = "lab-shared"
LOCAL_DIR = "/var/lib/libvirt/images"
SPARE_POOL = "spare"
SPARE_DIR = "/var/lib/libvirt/spare"
# Private copies, bind-mounted over the machine's own folders inside each host: whatever a role writes
# there (/etc/hosts, /etc/pki, /etc/libvirt, /etc/nftables.conf, ...) stays the host's own.
PRIVATE_DIRS = {
    "/etc": "etc",
    "/var/lib/libvirt": "var-lib-libvirt",
    "/var/log/libvirt": "var-log-libvirt",
    "/var/cache/libvirt": "var-cache-libvirt",
    "/root": "root",
}
GUEST_MODULES = ("virtio_ring", "virtio", "virtio_pci_modern_dev", "virtio_pci_legacy_dev", "virtio_pci",
                 "failover", "net_failover", "virtio_net", "virtio_blk", "evdev", "button")
NEEDED_TOOLS = ("ip", "unshare", "nsenter", "libvirtd", "virtlogd", "virsh", "qemu-system-x86_64", "qemu-img",
                "/usr/sbin/sshd", "ssh-keygen", "busybox", "cpio", "gcc", "apt-get", "dpkg")
BOUND_S = 60
# A guest's disk (--disk): sparse qcow2, room for the disk writer's 256 MiB ring (tests/lab/guest/diskwriter.c)
DISK_SIZE = "1G"


class LabError(Exception):
    pass


def log(msg):
    print("lab: %s" % msg, file=sys.stderr, flush=True)


def run(cmd, check=True, capture=True, timeout=120, input=None):
    proc = subprocess.run(cmd, check=False, stdout=subprocess.PIPE if capture else None, stderr=subprocess.PIPE if capture else None,
                          universal_newlines=True, timeout=timeout, input=input)
    if check and proc.returncode != 0:
        raise LabError("%s failed (%d): %s" % (" ".join(cmd), proc.returncode, (proc.stderr or proc.stdout or "").strip()))
    return proc


def load_state():
    if not os.path.exists(STATE):
        return None
    with open(STATE) as fh:
        return json.load(fh)


def save_state(state):
    os.makedirs(LAB, exist_ok=True)
    tmp = STATE + ".tmp"
    with open(tmp, "w") as fh:
        json.dump(state, fh, indent=2)
    os.replace(tmp, STATE)


def host_dir(name):
    return os.path.join(LAB, "hosts", name)


def pid_of(name, daemon="libvirtd"):
    """The pid of a host's daemon if it is alive, read from its private /run (a folder of ours).

    daemon "anchor" is the process that holds the host's namespaces for its whole life (a `sleep`), so
    that commands can enter the host while libvirtd is stopped or being restarted.
    """
    if daemon == "anchor":
        path = os.path.join(host_dir(name), "anchor.pid")
    else:
        path = os.path.join(host_dir(name), "run", "libvirt" if daemon != "sshd" else "", "%s.pid" % daemon)
    try:
        with open(path) as fh:
            pid = int(fh.read().strip())
        os.kill(pid, 0)
        return pid
    except (OSError, ValueError):
        return None


def host_ns(name):
    """The network namespace of lab host ``name`` (its name, after the lab's prefix)."""
    return PREFIX + name


def in_host(name, cmd, check=True, timeout=120, input=None):
    """Run a command inside a lab host (its network, mount and UTS namespaces)."""
    pid = pid_of(name, "anchor")
    if pid is None:
        raise LabError("host %s is not running" % name)
    return run(["nsenter", "-t", str(pid), "-m", "-u", "-n", "--"] + cmd, check=check, timeout=timeout, input=input)


def virsh(name, *args, check=True, timeout=120, input=None):
    return in_host(name, ["virsh", "-q", "-c", "qemu:///system"] + list(args), check=check, timeout=timeout, input=input)


# ---------------------------------------------------------------------------------------------- subnet

def machine_networks():
    nets = []
    out = run(["ip", "-4", "-o", "route", "show", "table", "all"], check=False).stdout
    for line in out.splitlines():
        words = line.split()
        if not words:
            continue
        dest = words[1] if words[0] in ("local", "broadcast", "unicast", "multicast") and len(words) > 1 else words[0]
        if dest == "default":
            continue
        try:
            nets.append(ipaddress.ip_network(dest, strict=False))
        except ValueError:
            continue
    out = run(["ip", "-4", "-o", "addr", "show"], check=False).stdout
    for line in out.splitlines():
        match = re.search(r"inet (\S+)", line)
        if match:
            nets.append(ipaddress.ip_interface(match.group(1)).network)
    return nets


def choose_subnet(requested, candidates=SUBNET_CANDIDATES, avoid=()):
    taken = [n for n in machine_networks() if not (n.prefixlen == 8 and n.network_address.is_loopback)]
    taken = [n for n in taken if not n.is_loopback] + list(avoid)
    if requested:
        try:
            subnet = ipaddress.ip_network(requested, strict=True)
        except ValueError as exc:
            raise LabError("subnet %s is not a valid IPv4 network: %s" % (requested, exc))
        if subnet.prefixlen > 26:
            raise LabError("subnet %s is too small for a lab: give a /26 or larger" % requested)
        clash = [str(n) for n in taken if n.overlaps(subnet)]
        if clash:
            raise LabError("subnet %s overlaps this machine's own routes (%s): choose another with --subnet"
                           % (requested, ", ".join(clash)))
        return subnet
    for candidate in candidates:
        subnet = ipaddress.ip_network(candidate)
        if not any(n.overlaps(subnet) for n in taken):
            return subnet
    raise LabError("every candidate lab subnet (%s) overlaps this machine's routes: give one with --subnet"
                   % ", ".join(candidates))


def addr(state, index):
    return str(ipaddress.ip_network(state["subnet"]).network_address + index)


def host_address(state, name):
    return addr(state, 10 + int(name[2:]))


# ---------------------------------------------------------------------------------------------- guest image

def build_image():
    """Kernel and initramfs for lab guests from Debian packages (no other download)."""
    kernel = os.path.join(CACHE, "vmlinuz")
    initrd = os.path.join(CACHE, "initrd.img")
    stamp = os.path.join(CACHE, "stamp")
    sources = [os.path.join(GUEST_SRC, f) for f in ("init", "dirty.c", "powerbtn.c", "diskwriter.c")]
    if os.path.exists(stamp) and all(os.path.getmtime(s) <= os.path.getmtime(stamp) for s in sources):
        return kernel, initrd
    log("building the guest kernel and initramfs")
    work = os.path.join(CACHE, "build")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    debs = os.path.join(work, "debs")
    os.makedirs(debs)
    meta = run(["apt-cache", "depends", "linux-image-cloud-amd64"], check=False).stdout
    match = re.search(r"Depends: (linux-image-[0-9][^\s]*-cloud-amd64)", meta)
    if not match:
        run(["apt-get", "update", "-qq"], timeout=300)
        meta = run(["apt-cache", "depends", "linux-image-cloud-amd64"]).stdout
        match = re.search(r"Depends: (linux-image-[0-9][^\s]*-cloud-amd64)", meta)
        if not match:
            raise LabError("cannot find the Debian cloud kernel package (linux-image-cloud-amd64)")
    run(["sh", "-c", "cd %s && apt-get download %s busybox-static" % (debs, match.group(1))], timeout=600)
    unpacked = os.path.join(work, "x")
    for deb in os.listdir(debs):
        run(["dpkg", "-x", os.path.join(debs, deb), unpacked])
    boot = os.path.join(unpacked, "boot")
    vmlinuz = [f for f in os.listdir(boot) if f.startswith("vmlinuz-")][0]
    release = vmlinuz[len("vmlinuz-"):]

    root = os.path.join(work, "root")
    for sub in ("bin", "proc", "sys", "dev", "www", "lib/modules/%s" % release):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    shutil.copy(os.path.join(unpacked, "bin", "busybox"), os.path.join(root, "bin", "busybox"))
    os.symlink("busybox", os.path.join(root, "bin", "sh"))  # /init's interpreter, before busybox --install
    moddir = os.path.join(unpacked, "lib", "modules", release)
    if not os.path.isdir(moddir):
        moddir = os.path.join(unpacked, "usr", "lib", "modules", release)
    wanted = set(GUEST_MODULES)
    for dirpath, _dirs, files in os.walk(moddir):
        for fname in files:
            base = fname.split(".ko")[0]
            if base in wanted and ".ko" in fname:
                target = os.path.join(root, "lib", "modules", release, base + ".ko")
                src = os.path.join(dirpath, fname)
                if fname.endswith(".ko.xz"):
                    run(["sh", "-c", "xz -dc '%s' > '%s'" % (src, target)])
                elif fname.endswith(".ko.zst"):
                    run(["sh", "-c", "zstd -dc '%s' > '%s'" % (src, target)])
                elif fname.endswith(".ko.gz"):
                    run(["sh", "-c", "gzip -dc '%s' > '%s'" % (src, target)])
                else:
                    shutil.copy(src, target)
    shutil.copy(os.path.join(GUEST_SRC, "init"), os.path.join(root, "init"))
    os.chmod(os.path.join(root, "init"), 0o755)
    for program in ("dirty", "powerbtn", "diskwriter"):
        run(["gcc", "-static", "-O2", "-o", os.path.join(root, "bin", program), os.path.join(GUEST_SRC, program + ".c")])
    run(["sh", "-c", "cd '%s' && find . | cpio -o -H newc --quiet | gzip -1 > '%s'" % (root, initrd + ".tmp")])
    os.replace(initrd + ".tmp", initrd)
    shutil.copy(os.path.join(boot, vmlinuz), kernel)
    shutil.rmtree(work, ignore_errors=True)
    with open(stamp, "w") as fh:
        fh.write(release + "\n")
    return kernel, initrd


# ---------------------------------------------------------------------------------------------- hosts

def write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as fh:
        fh.write(text)
    os.chmod(path, mode)


def set_conf(path, values):
    """Set key = value lines in a libvirt-style configuration file (replacing earlier settings)."""
    with open(path) as fh:
        lines = [l for l in fh.read().splitlines() if not any(re.match(r"^\s*%s\s*=" % k, l) for k in values)]
    lines += ["%s = %s" % (k, v) for k, v in values.items()]
    write(path, "\n".join(lines) + "\n")


INIT_SCRIPT = """#!/bin/sh
### BEGIN INIT INFO
# Provides:          libvirtd
# Short-Description: libvirt management daemon (hostmaint lab)
### END INIT INFO
# Written by tests/lab/lab. A lab host has no init system of its own: this script plays libvirtd's
# init script inside the host's namespaces, so that `service libvirtd restart` (and Ansible's service
# module) work as on a sysvinit hypervisor. It reads LIBVIRTD_ARGS from /etc/default/libvirtd, as
# Debian's libvirtd unit does (--listen there makes libvirtd open its TLS/TCP listeners).
PIDFILE=/run/libvirt/libvirtd.pid
LIBVIRTD_ARGS=
[ -r /etc/default/libvirtd ] && . /etc/default/libvirtd
running() { [ -s "$PIDFILE" ] && kill -0 "$(cat "$PIDFILE")" 2>/dev/null; }
start() {
    running && return 0
    mkdir -p /run/libvirt
    # shellcheck disable=SC2086
    /usr/sbin/libvirtd -d -p "$PIDFILE" $LIBVIRTD_ARGS || return 1
    i=0
    while [ $i -lt 300 ]; do
        virsh -q -c qemu:///system version >/dev/null 2>&1 && return 0
        i=$((i + 1)); sleep 0.1
    done
    echo "libvirtd did not answer within 30 s" >&2
    return 1
}
stop() {
    running || { rm -f "$PIDFILE"; return 0; }
    pid=$(cat "$PIDFILE")
    kill "$pid"
    i=0
    while kill -0 "$pid" 2>/dev/null; do
        i=$((i + 1))
        [ $i -eq 300 ] && kill -9 "$pid"
        sleep 0.1
    done
    rm -f "$PIDFILE"
}
case "$1" in
    start) start ;;
    stop) stop ;;
    restart|force-reload|reload) stop; start ;;
    status) if running; then echo "libvirtd is running"; exit 0; else echo "libvirtd is not running"; exit 3; fi ;;
    *) echo "usage: $0 {start|stop|restart|force-reload|status}" >&2; exit 2 ;;
esac
"""


# Stand-ins for a hypervisor's package upgrade and reboot (the hypervisor_patch role runs them through
# its command variables, set in the lab's inventory): the lab's hosts share the machine's packages and
# cannot reboot, so an "upgrade" changes what the host reports as its version (its private
# /etc/debian_version, part of its generation) and asks for a reboot as Debian does
# (/run/reboot-required); a "reboot" does to the host what a reboot does to a hypervisor: every QEMU on
# it dies, and its daemons start afresh.
STAND_IN_PENDING = """#!/bin/sh
# Written by tests/lab/lab: exit 0 when an upgrade is pending (the lab's archive offers a newer version).
[ "$(cat /etc/debian_version)" != "$(cat /etc/hostmaint-lab/available)" ]
"""
STAND_IN_UPGRADE = """#!/bin/sh
# Written by tests/lab/lab: the stand-in for `apt-get dist-upgrade` (see STAND_IN_PENDING).
set -e
available=$(cat /etc/hostmaint-lab/available)
current=$(cat /etc/debian_version)
if [ "$current" = "$available" ]; then
    echo "0 upgraded"
    exit 0
fi
echo "$available" > /etc/debian_version.new
mv /etc/debian_version.new /etc/debian_version
: > /run/reboot-required
echo "upgraded $current -> $available; a reboot is required"
"""
STAND_IN_REBOOT = """#!/bin/sh
# Written by tests/lab/lab: the stand-in for a reboot. Every QEMU on this host dies (as in a reboot:
# no migration, no clean shutdown), libvirtd and virtlogd start afresh, the reboot flag goes.
for pidfile in /run/libvirt/qemu/*.pid; do
    [ -e "$pidfile" ] && kill -9 "$(cat "$pidfile")" 2>/dev/null
done
/etc/init.d/libvirtd stop
[ -s /run/libvirt/virtlogd.pid ] && kill "$(cat /run/libvirt/virtlogd.pid)" 2>/dev/null
sleep 1
rm -f /run/reboot-required /run/libvirt/virtlogd.pid
virtlogd -d -p /run/libvirt/virtlogd.pid
/etc/init.d/libvirtd start
echo "rebooted"
"""


def prepare_host_files(state, name):
    hdir = host_dir(name)
    ip = host_address(state, name)
    if os.path.exists(hdir):
        shutil.rmtree(hdir)  # a stale key or known_hosts left behind would break SSH between hosts
    for real, sub in PRIVATE_DIRS.items():
        os.makedirs(os.path.join(hdir, sub), exist_ok=True)
    # A freshly installed hypervisor: the machine's /etc as installed (packages' configuration), our
    # identity, no TLS, no migration network settings, no shared storage, nothing in /etc/hosts.
    run(["cp", "-a", "/etc/.", os.path.join(hdir, "etc")])
    etc = os.path.join(hdir, "etc")
    autostart = os.path.join(etc, "libvirt", "qemu", "networks", "autostart")
    shutil.rmtree(autostart, ignore_errors=True)
    os.makedirs(autostart)
    write(os.path.join(etc, "hostname"), name + "\n")
    write(os.path.join(etc, "init.d", "libvirtd"), INIT_SCRIPT, 0o755)
    with open(os.path.join(etc, "debian_version")) as fh:
        release = fh.read().strip()
    write(os.path.join(etc, "hostmaint-lab", "available"), release.split("+lab")[0] + "+lab1\n")
    write(os.path.join(etc, "hostmaint-lab", "pending"), STAND_IN_PENDING, 0o755)
    write(os.path.join(etc, "hostmaint-lab", "upgrade"), STAND_IN_UPGRADE, 0o755)
    write(os.path.join(etc, "hostmaint-lab", "reboot"), STAND_IN_REBOOT, 0o755)
    set_conf(os.path.join(etc, "libvirt", "libvirtd.conf"), {
        "host_uuid": '"%s"' % uuid.uuid4(),
        "listen_tls": "0",
        "listen_tcp": "0",
        "log_outputs": '"3:file:/var/log/libvirt/libvirtd.log"',
    })
    # What a lab host needs to run QEMU at all here (no cgroups, no security driver, QEMU as root);
    # nothing about migration: that is the setup roles' job.
    set_conf(os.path.join(etc, "libvirt", "qemu.conf"), {
        "user": '"root"',
        "group": '"root"',
        "security_driver": '"none"',
        "cgroup_controllers": "[ ]",
        "namespaces": "[ ]",
    })
    for sub in ("qemu", "images"):
        os.makedirs(os.path.join(hdir, "var-lib-libvirt", sub), exist_ok=True)
    os.makedirs(os.path.join(hdir, "var-log-libvirt", "qemu"), exist_ok=True)
    os.makedirs(os.path.join(hdir, "run"), exist_ok=True)
    # root's home: the lab key, so that libvirtd's qemu+ssh peer-to-peer connections find it.
    ssh = os.path.join(hdir, "root", ".ssh")
    os.makedirs(ssh, mode=0o700, exist_ok=True)
    shutil.copy(os.path.join(LAB, "ssh", "id_ed25519"), os.path.join(ssh, "id_ed25519"))
    os.chmod(os.path.join(ssh, "id_ed25519"), 0o600)
    shutil.copy(os.path.join(LAB, "ssh", "id_ed25519.pub"), os.path.join(ssh, "authorized_keys"))
    # every lab host key is known in advance (write_known_hosts): no first-use prompts, no races
    write(os.path.join(ssh, "config"), "\n".join([
        "Host *",
        "    StrictHostKeyChecking yes",
        "    UserKnownHostsFile /root/.ssh/known_hosts",
        "    # bounded: a peer that does not answer fails the connection instead of hanging it",
        "    ConnectTimeout 10",
        "    ServerAliveInterval 5",
        "    ServerAliveCountMax 3",
        "",
    ]), 0o600)
    write(os.path.join(hdir, "root", ".profile"), "export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin\n")
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", os.path.join(hdir, "ssh_host_ed25519_key")])
    write(os.path.join(hdir, "sshd_config"), "\n".join([
        "ListenAddress %s" % ip,
        "HostKey %s" % os.path.join(hdir, "ssh_host_ed25519_key"),
        "PidFile /run/sshd.pid",
        "PermitRootLogin prohibit-password",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "AuthorizedKeysFile /root/.ssh/authorized_keys",
        "StrictModes no",
        "PrintMotd no",
        "AcceptEnv LANG LC_*",
        "Subsystem sftp internal-sftp",
        "MaxStartups 100",
        "MaxSessions 50",
        "",
    ]))


def write_known_hosts(state, names):
    """Every host's key for every host and for the controller, as a managed fleet would have them."""
    lines = []
    for name in names:
        with open(os.path.join(host_dir(name), "ssh_host_ed25519_key.pub")) as fh:
            key_type, key = fh.read().split()[:2]
        lines.append("%s %s %s" % (host_address(state, name), key_type, key))
    text = "\n".join(lines) + "\n"
    write(os.path.join(LAB, "ssh", "known_hosts"), text, 0o600)
    for name in names:
        write(os.path.join(host_dir(name), "root", ".ssh", "known_hosts"), text, 0o600)


def enter_namespaces(ns, script, pidfile):
    """Start a namespace's anchor: a process in the network namespace ns, with private mount and UTS
    namespaces, that runs script (the mounts and daemons) and then sleeps for the namespace's life.
    Its pid goes to pidfile; `nsenter -t <pid>` enters the namespace from then on."""
    ready = pidfile + ".ready"
    if os.path.exists(ready):
        os.unlink(ready)
    full = "set -e\n%s\ntouch '%s'\nexec sleep infinity\n" % (script, ready)
    proc = subprocess.Popen(["ip", "netns", "exec", ns, "unshare", "--mount", "--uts", "--propagation", "private", "--",
                             "sh", "-c", full], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=open(pidfile + ".log", "w"), start_new_session=True)
    write(pidfile, "%d\n" % proc.pid)
    deadline = time.time() + BOUND_S
    while time.time() < deadline:
        if os.path.exists(ready):
            return proc.pid
        if proc.poll() is not None:
            with open(pidfile + ".log") as fh:
                raise LabError("starting %s failed: %s" % (ns, fh.read().strip()[-600:]))
        time.sleep(0.1)
    raise LabError("%s was not ready within %d s" % (ns, BOUND_S))


def start_host(state, name):
    hdir = host_dir(name)
    ip = host_address(state, name)
    binds = "\n".join("mount --bind '%s' '%s'" % (os.path.join(hdir, sub), real) for real, sub in PRIVATE_DIRS.items())
    script = "\n".join([
        "mount --make-rprivate /",
        "mount --bind '%s' /run" % os.path.join(hdir, "run"),
        "mkdir -p /run/libvirt /run/sshd /run/lock",
        binds,
        "hostname %s" % name,
        "virtlogd -d -p /run/libvirt/virtlogd.pid",
        "/etc/init.d/libvirtd start",
        "/usr/sbin/sshd -f '%s'" % os.path.join(hdir, "sshd_config"),
    ])
    enter_namespaces(host_ns(name), script, os.path.join(hdir, "anchor.pid"))
    deadline = time.time() + BOUND_S
    while time.time() < deadline:
        if pid_of(name) and virsh(name, "version", check=False).returncode == 0:
            break
        time.sleep(0.2)
    else:
        raise LabError("libvirtd on %s did not answer within %d s" % (name, BOUND_S))
    # The default pool for host-private images, as virt-install makes it on a new host.
    virsh(name, "pool-define-as", "default", "dir", "--target", LOCAL_DIR)
    virsh(name, "pool-autostart", "default")
    virsh(name, "pool-start", "default")
    # A second host-private pool, the new storage that live storage migration (disk_move) moves disks onto.
    virsh(name, "pool-define-as", SPARE_POOL, "dir", "--target", SPARE_DIR)
    virsh(name, "pool-build", SPARE_POOL)
    virsh(name, "pool-autostart", SPARE_POOL)
    virsh(name, "pool-start", SPARE_POOL)
    deadline = time.time() + BOUND_S
    while time.time() < deadline:
        probe = run(["ssh"] + ssh_opts() + ["root@%s" % ip, "true"], check=False, timeout=30)
        if probe.returncode == 0:
            return
        time.sleep(0.3)
    raise LabError("sshd on %s (%s) did not answer within %d s" % (name, ip, BOUND_S))


def storage_dir():
    return os.path.join(LAB, "storage")


def start_storage(state):
    """The storage node: a namespace of its own on the lab's switch, serving one GlusterFS volume.

    GlusterFS because this machine's kernel has no NFS server or client and no iSCSI initiator, but it has
    FUSE: hypervisors mount the volume with the GlusterFS FUSE client (a libvirt netfs pool of format
    glusterfs), and libvirt treats a fuse.glusterfs mount as shared storage by itself.
    """
    sdir = storage_dir()
    for sub in ("var-lib-glusterd", "var-log-glusterfs", "run", "etc-glusterfs", "brick"):
        os.makedirs(os.path.join(sdir, sub), exist_ok=True)
    run(["cp", "-a", "/etc/glusterfs/.", os.path.join(sdir, "etc-glusterfs")])
    address = storage_address(state)
    script = "\n".join([
        "mount --make-rprivate /",
        "mount --bind '%s' /run" % os.path.join(sdir, "run"),
        "mount --bind '%s' /var/lib/glusterd" % os.path.join(sdir, "var-lib-glusterd"),
        "mount --bind '%s' /var/log/glusterfs" % os.path.join(sdir, "var-log-glusterfs"),
        "mount --bind '%s' /etc/glusterfs" % os.path.join(sdir, "etc-glusterfs"),
        "hostname %s" % STORAGE_NAME,
        "glusterd -p /run/glusterd.pid",
    ])
    pid = enter_namespaces(STORAGE_NS, script, os.path.join(sdir, "anchor.pid"))
    gluster = ["nsenter", "-t", str(pid), "-m", "-u", "-n", "--", "gluster", "--mode=script"]
    deadline = time.time() + BOUND_S
    while run(gluster + ["volume", "list"], check=False, timeout=30).returncode != 0:
        if time.time() > deadline:
            raise LabError("glusterd on the storage node did not answer within %d s" % BOUND_S)
        time.sleep(0.3)
    run(gluster + ["volume", "create", STORAGE_VOLUME, "%s:%s" % (address, os.path.join(sdir, "brick")), "force"], timeout=60)
    run(gluster + ["volume", "start", STORAGE_VOLUME], timeout=60)


def storage_address(state):
    return addr(state, 5)


def migration_address(state, name):
    return str(ipaddress.ip_network(state["migration_subnet"]).network_address + 10 + int(name[2:]))


def ssh_opts():
    return ["-i", os.path.join(LAB, "ssh", "id_ed25519"), "-o", "UserKnownHostsFile=%s" % os.path.join(LAB, "ssh", "known_hosts"),
            "-o", "StrictHostKeyChecking=yes", "-o", "BatchMode=yes", "-o", "ConnectTimeout=5"]


def cluster_groups(state):
    """[(group, [hosts])]: the lab's clusters, its hosts cut into ``state['clusters']`` runs of consecutive hosts
    (4 hosts in 2 clusters: cluster_a hv1 hv2, cluster_b hv3 hv4); one cluster is the group hypervisors itself."""
    count = int(state.get("clusters") or 1)
    hosts = state["hosts"]
    if count <= 1:
        return [("hypervisors", list(hosts))]
    size = -(-len(hosts) // count)
    return [("cluster_%s" % chr(ord("a") + index), hosts[index * size:(index + 1) * size]) for index in range(count)
            if hosts[index * size:(index + 1) * size]]


def write_inventory(state):
    """The lab's inventory: what a real fleet's inventory would say (addresses, groups, role variables),
    nothing that bends the engine: after playbooks/setup.yml the engine runs on its defaults (TLS)."""
    key = os.path.join(LAB, "ssh", "id_ed25519")
    known = os.path.join(LAB, "ssh", "known_hosts")
    lines = [
        "# Written by tests/lab/lab up: the lab's hypervisors, reachable over SSH as root.",
        "# playbooks/setup.yml turns them into a TLS cluster with a migration network and shared storage.",
        "all:",
        "  children:",
        "    hypervisors:",
    ]
    clusters = cluster_groups(state)
    if len(clusters) == 1:
        lines.append("      hosts:")
        for name in state["hosts"]:
            lines += ["        %s:" % name, "          ansible_host: %s" % host_address(state, name)]
    else:
        # clusters: a group of its own for each, named by its hosts' hostmaint_libvirt_cluster_group, so that the
        # engine never moves a guest out of its cluster; setup.yml still sets up every host of hypervisors
        lines.append("      children:")
        for group, members in clusters:
            lines += ["        %s:" % group, "          hosts:"]
            for name in members:
                lines += ["            %s:" % name, "              ansible_host: %s" % host_address(state, name)]
            lines += ["          vars:", "            hostmaint_libvirt_cluster_group: %s" % group]
    lines += [
        "      vars:",
        "        ansible_user: root",
        "        ansible_ssh_private_key_file: %s" % key,
        "        ansible_ssh_common_args: >-",
        "          -o UserKnownHostsFile=%s -o StrictHostKeyChecking=yes" % known,
        "        ansible_python_interpreter: /usr/bin/python3",
        "        # hypervisor_network: memory pages travel over the second NIC, on the migration switch;",
        "        # guests use br0 (the uplink bridge, with the management address).",
        "        hypervisor_network_migration_interface: %s" % MIGRATION_IFACE,
        "        hypervisor_network_bridges:",
        "          - name: br0",
        "        # shared_storage: the storage node's GlusterFS volume, mounted by libvirt on every host",
        "        shared_storage_pools:",
        "          - name: %s" % SHARED_POOL,
        "            type: glusterfs",
        "            host: %s" % storage_address(state),
        "            source: %s" % STORAGE_VOLUME,
        "            path: %s" % SHARED_DIR,
        "        # hypervisor_patch: the lab's stand-ins for the package upgrade and the reboot (tests/lab/lab",
        "        # writes them into each host's private /etc); they touch none of the machine's packages",
        "        hypervisor_patch_pending_command: /etc/hostmaint-lab/pending",
        "        hypervisor_patch_upgrade_command: /etc/hostmaint-lab/upgrade",
        "        hypervisor_patch_reboot_command: /etc/hostmaint-lab/reboot",
        "        hypervisor_patch_poll_interval: 1  # the stand-ins take a second: look every second",
        "",
    ]
    write(os.path.join(LAB, "inventory.yml"), "\n".join(lines))


def add_switch(ns, bridge):
    run(["ip", "netns", "add", ns])
    run(["ip", "-n", ns, "link", "add", bridge, "type", "bridge"])
    run(["ip", "-n", ns, "link", "set", bridge, "up"])
    run(["ip", "-n", ns, "link", "set", "lo", "up"])


def cmd_up(args):
    state = load_state()
    if state and state.get("complete"):
        alive = [h for h in state["hosts"] if pid_of(h)]
        if len(alive) == len(state["hosts"]) and len(state["hosts"]) == args.hosts and \
                int(state.get("clusters") or 1) == args.clusters:
            log("the lab is already up (%s)" % ", ".join(state["hosts"]))
            return 0
        raise LabError("a lab with hosts %s already exists (%d running): run `tests/lab/lab down` first"
                       % (", ".join(state["hosts"]), len(alive)))
    if state:
        log("a previous `up` did not finish: cleaning it up first")
        cmd_down(argparse.Namespace(purge=False))
    missing = [t for t in NEEDED_TOOLS if not shutil.which(t)]
    if missing:
        raise LabError("missing tools %s: run scripts/setup first" % ", ".join(missing))
    if not 1 <= args.hosts <= 9:
        raise LabError("--hosts must be between 1 and 9, got %d" % args.hosts)
    if not 1 <= args.clusters <= args.hosts:
        raise LabError("--clusters must be between 1 and the number of hosts (%d), got %d" % (args.hosts, args.clusters))
    existing = set(run(["ip", "netns", "list"]).stdout.split())
    names = ["hv%d" % i for i in range(1, args.hosts + 1)]
    clash = sorted(existing & set([host_ns(n) for n in names] + [SWITCH_NS, MIGRATION_NS, STORAGE_NS]))
    if clash:
        raise LabError("network namespaces %s already exist and are not this lab's: remove them first" % ", ".join(clash))
    subnet = choose_subnet(args.subnet)
    migration_subnet = choose_subnet(None, MIGRATION_SUBNET_CANDIDATES, avoid=[subnet])
    started = time.time()
    state = {"subnet": str(subnet), "migration_subnet": str(migration_subnet), "hosts": names, "complete": False,
             "clusters": args.clusters, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    save_state(state)  # from here on `down` knows what to remove
    kernel, initrd = build_image()
    state["kernel"], state["initrd"] = kernel, initrd
    os.makedirs(os.path.join(LAB, "ssh"), mode=0o700, exist_ok=True)
    if not os.path.exists(os.path.join(LAB, "ssh", "id_ed25519")):
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hostmaint-lab", "-f", os.path.join(LAB, "ssh", "id_ed25519")])
    prefix = subnet.prefixlen
    # The management switch and the migration switch, each a bridge in a namespace of its own.
    add_switch(SWITCH_NS, "sw0")
    add_switch(MIGRATION_NS, "sw0")
    # The controller's leg: one veth from the root namespace into the management switch.
    run(["ip", "link", "add", CTL_VETH, "type", "veth", "peer", "name", "ctl", "netns", SWITCH_NS])
    run(["ip", "-n", SWITCH_NS, "link", "set", "ctl", "master", "sw0", "up"])
    run(["ip", "addr", "add", "%s/%d" % (addr(state, 1), prefix), "dev", CTL_VETH])
    run(["ip", "link", "set", CTL_VETH, "up"])
    # The storage node, on the management switch.
    run(["ip", "netns", "add", STORAGE_NS])
    run(["ip", "link", "add", "sw-store", "netns", SWITCH_NS, "type", "veth", "peer", "name", "eth0", "netns", STORAGE_NS])
    run(["ip", "-n", SWITCH_NS, "link", "set", "sw-store", "master", "sw0", "up"])
    run(["ip", "-n", STORAGE_NS, "link", "set", "lo", "up"])
    run(["ip", "-n", STORAGE_NS, "link", "set", "eth0", "address", "02:00:00:00:05:01"])
    run(["ip", "-n", STORAGE_NS, "addr", "add", "%s/%d" % (storage_address(state), prefix), "dev", "eth0"])
    run(["ip", "-n", STORAGE_NS, "link", "set", "eth0", "up"])
    for name in names:
        index = int(name[2:])
        ns = host_ns(name)
        run(["ip", "netns", "add", ns])
        run(["ip", "link", "add", "sw-" + name, "netns", SWITCH_NS, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", SWITCH_NS, "link", "set", "sw-" + name, "master", "sw0", "up"])
        run(["ip", "-n", ns, "link", "set", "lo", "up"])
        # A fixed bridge address: otherwise Linux gives a bridge the lowest address among its ports,
        # and a guest's tap (fe:54:00:...) joining or leaving would change the host's MAC under its
        # peers' ARP caches and stall their connections (seen: migrations failing with "client
        # socket is closed" after a keepalive timeout).
        run(["ip", "-n", ns, "link", "add", "br0", "address", "02:00:00:00:01:%02x" % index, "type", "bridge"])
        run(["ip", "-n", ns, "link", "set", "eth0", "address", "02:00:00:00:02:%02x" % index])
        run(["ip", "-n", ns, "link", "set", "eth0", "master", "br0", "up"])
        run(["ip", "-n", ns, "addr", "add", "%s/%d" % (host_address(state, name), prefix), "dev", "br0"])
        run(["ip", "-n", ns, "link", "set", "br0", "up"])
        # The second NIC, cabled to the migration switch, configured with its address as an installer
        # would; what travels over it is the setup roles' choice.
        run(["ip", "link", "add", "mig-" + name, "netns", MIGRATION_NS, "type", "veth", "peer", "name", MIGRATION_IFACE,
             "netns", ns])
        run(["ip", "-n", MIGRATION_NS, "link", "set", "mig-" + name, "master", "sw0", "up"])
        run(["ip", "-n", ns, "link", "set", MIGRATION_IFACE, "address", "02:00:00:00:03:%02x" % index])
        run(["ip", "-n", ns, "addr", "add", "%s/%d" % (migration_address(state, name), migration_subnet.prefixlen),
             "dev", MIGRATION_IFACE])
        run(["ip", "-n", ns, "link", "set", MIGRATION_IFACE, "up"])
        prepare_host_files(state, name)
    write_known_hosts(state, names)
    start_storage(state)
    log("storage node %s up at %s (GlusterFS volume %s)" % (STORAGE_NAME, storage_address(state), STORAGE_VOLUME))
    for name in names:
        start_host(state, name)
        log("%s up at %s (migration NIC %s)" % (name, host_address(state, name), migration_address(state, name)))
    write_inventory(state)
    state["complete"] = True
    save_state(state)
    cmd_save(argparse.Namespace(name="bare"))  # `lab reset bare`: the hosts as a fresh install leaves them
    log("lab up in %.1f s: %s; inventory %s" % (time.time() - started, ", ".join(names), os.path.join(LAB, "inventory.yml")))
    return 0


def kill_pids(pids, bound=10.0):
    pids = [p for p in pids if p and p != os.getpid()]
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except OSError:
                pass
        deadline = time.time() + bound
        while time.time() < deadline:
            pids = [p for p in pids if os.path.exists("/proc/%d" % p)]
            if not pids:
                return
            time.sleep(0.1)


def netns_pids(ns):
    out = run(["ip", "netns", "pids", ns], check=False).stdout
    return [int(p) for p in out.split() if p.isdigit()]


def cmd_down(args):
    state = load_state() or {}
    existing = set(run(["ip", "netns", "list"], check=False).stdout.split())
    names = set(state.get("hosts", [])) | set(n[len(PREFIX):] for n in existing
                                              if n.startswith(PREFIX) and HOST_RE.match(n[len(PREFIX):]))
    names = sorted(n for n in names if host_ns(n) in existing or os.path.isdir(host_dir(n)))
    for name in names:
        # guests (qemu) first, so that libvirtd does not restart them; then the daemons
        if host_ns(name) in existing:
            pids = netns_pids(host_ns(name))
            qemu = [p for p in pids if "qemu" in _comm(p)]
            kill_pids(qemu)
            kill_pids(netns_pids(host_ns(name)))
        for daemon in ("libvirtd", "virtlogd", "sshd", "anchor"):
            kill_pids([pid_of(name, daemon)])
    for name in names:
        if host_ns(name) in existing:
            run(["ip", "netns", "del", host_ns(name)], check=False)
    for ns in (STORAGE_NS, SWITCH_NS, MIGRATION_NS):
        if ns in existing:
            kill_pids(netns_pids(ns))
            run(["ip", "netns", "del", ns], check=False)
    if os.path.exists("/sys/class/net/%s" % CTL_VETH):
        run(["ip", "link", "del", CTL_VETH], check=False)
    keep_logs(names)
    shutil.rmtree(LAB, ignore_errors=True)
    if getattr(args, "purge", False):
        shutil.rmtree(CACHE, ignore_errors=True)
    left = set(run(["ip", "netns", "list"], check=False).stdout.split()) & (
        set(host_ns(n) for n in names) | {SWITCH_NS, MIGRATION_NS, STORAGE_NS})
    if left or os.path.exists(LAB):
        raise LabError("could not remove %s" % ", ".join(sorted(left) or [LAB]))
    log("lab removed" if names or state else "no lab to remove")
    return 0


KEPT_LABS = 8


def keep_logs(names):
    """The hosts' libvirt and guest console logs outlive the lab, for a post-mortem.

    Each lab's go into .cache/lab/logs/<time it went down>/<host>/, the newest KEPT_LABS of them are kept
    (a test run builds several labs: the first one's logs must survive the later ones), and
    .cache/lab/logs/latest points at the newest. `down --purge` drops them all.
    """
    root = os.path.join(CACHE, "logs")
    target = os.path.join(root, datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%S.%f"))
    for name in names:
        source = os.path.join(host_dir(name), "var-log-libvirt")
        if os.path.isdir(source):
            shutil.copytree(source, os.path.join(target, name), dirs_exist_ok=True)
    if not os.path.isdir(target):
        return
    latest = os.path.join(root, "latest")
    if os.path.lexists(latest):
        os.unlink(latest)
    os.symlink(os.path.basename(target), latest)
    runs = sorted(d for d in os.listdir(root) if re.match(r"^\d{8}T\d{6}", d))
    stale = [d for d in os.listdir(root) if d != "latest" and d not in runs] + runs[:-KEPT_LABS]
    for old in stale:  # older labs, and the flat layout of earlier versions
        shutil.rmtree(os.path.join(root, old), ignore_errors=True)


def _comm(pid):
    try:
        with open("/proc/%d/comm" % pid) as fh:
            return fh.read().strip()
    except OSError:
        return ""


# ---------------------------------------------------------------------------------------------- guests

def require_up():
    state = load_state()
    if not state or not state.get("complete"):
        raise LabError("the lab is not up: run `tests/lab/lab up` first")
    return state


def guest_address(xml_text):
    cmdline = ET.fromstring(xml_text).findtext("os/cmdline") or ""
    match = re.search(r"lab_ip=([0-9.]+)", cmdline)
    return match.group(1) if match else None


def all_guests(state):
    guests = []
    for name in state["hosts"]:
        if not pid_of(name):
            continue
        # one name per line: a name may hold spaces
        listing = [line.strip() for line in virsh(name, "list", "--all", "--name", check=False).stdout.splitlines()
                   if line.strip()]
        for guest in listing:
            dom_state = virsh(name, "domstate", guest, check=False).stdout.strip()
            xml = virsh(name, "dumpxml", guest, check=False).stdout
            guests.append({"name": guest, "host": name, "address": guest_address(xml) if xml else None,
                           "state": dom_state or "unknown"})
    return guests


def http_get(address, timeout=1.0):
    with urllib.request.urlopen("http://%s/" % address, timeout=timeout) as resp:
        return resp.read().decode()


def valid_guest_name(name):
    """A name libvirt takes for a QEMU guest and virsh can be given: printable (spaces and non-ASCII letters
    included), no '/', no leading '-' or space, at most 63 bytes in UTF-8 (the host's file names are built
    from it), and not a number or a UUID (virsh would read those as a domain's id or UUID)."""
    if not (0 < len(name.encode("utf-8")) <= 63 and name.isprintable() and "/" not in name
            and not name.startswith(("-", " ")) and name == name.rstrip()):
        return False
    if name.isdigit():
        return False
    try:
        uuid.UUID(name)
        return False
    except ValueError:
        return True


def cmd_guest_add(args):
    state = require_up()
    # one guest add at a time: the address is chosen from what the hosts already have
    lock = open(os.path.join(LAB, "guest.lock"), "w")
    fcntl.flock(lock, fcntl.LOCK_EX)
    if args.host not in state["hosts"]:
        raise LabError("unknown host %s: the lab has %s" % (args.host, ", ".join(state["hosts"])))
    if not valid_guest_name(args.name):
        raise LabError("guest name %r is not valid: give 1 to 63 bytes of printable characters (spaces and non-ASCII "
                       "letters are fine), without '/', not starting with '-' or a space, not a number or a UUID"
                       % args.name)
    if args.memory < 64:
        raise LabError("guest %s needs at least 64 MiB of memory, got %d" % (args.name, args.memory))
    if args.dirty < 0:
        raise LabError("--dirty must be 0 or more MiB/s, got %d" % args.dirty)
    if args.disk_writer < 0:
        raise LabError("--disk-writer must be 0 or more records per second, got %d" % args.disk_writer)
    if args.disk_writer and not args.disk:
        raise LabError("--disk-writer needs a disk to write to: give --disk local or --disk shared")
    guests = all_guests(state)
    if any(g["name"] == args.name for g in guests):
        where = [g["host"] for g in guests if g["name"] == args.name]
        raise LabError("guest %s already exists on %s" % (args.name, ", ".join(where)))
    used = set(g["address"] for g in guests)
    subnet = ipaddress.ip_network(state["subnet"])
    index = next((i for i in range(100, subnet.num_addresses - 2) if addr(state, i) not in used), None)
    if index is None:
        raise LabError("no free guest address left in %s" % subnet)
    ip = addr(state, index)
    mac = "52:54:00:%02x:%02x:%02x" % (0x1a, index >> 8 & 0xff, index & 0xff)
    disk_xml = ""
    if args.disk:
        pool = SHARED_POOL if args.disk == "shared" else "default"
        if virsh(args.host, "pool-info", pool, check=False).returncode != 0:
            hint = ": run playbooks/setup.yml first (its shared_storage role defines it)" if args.disk == "shared" else ""
            raise LabError("%s has no storage pool %s%s" % (args.host, pool, hint))
        volume = "%s.qcow2" % args.name
        virsh(args.host, "pool-refresh", pool)
        virsh(args.host, "vol-create-as", pool, volume, DISK_SIZE, "--format", "qcow2")
        path = virsh(args.host, "vol-path", volume, "--pool", pool).stdout.strip()
        disk_xml = ("<disk type='file' device='disk'><driver name='qemu' type='qcow2' cache='none'/>"
                    "<source file='%s'/><target dev='vda' bus='virtio'/></disk>" % xml_escape(path, {"'": "&apos;"}))
    extra_nics = ""
    for bridge in args.extra_bridge:
        extra_nics += "<interface type='bridge'><source bridge='%s'/><model type='virtio'/></interface>" % bridge
    serial = "/var/log/libvirt/qemu/%s-serial.log" % args.name
    dirty_mib = max(16, min(args.memory // 2, 128))
    # the name goes to the guest's init hex-coded: the kernel command line splits on spaces
    cmdline = ("console=ttyS0 loglevel=5 oops=panic unknown_nmi_panic panic=-1 lab_name_hex=%s lab_ip=%s/%d lab_gw=%s "
               "lab_dirty=%d lab_dirty_mib=%d lab_diskwriter=%d" % (
                   args.name.encode("utf-8").hex(), ip, subnet.prefixlen, addr(state, 1), args.dirty, dirty_mib,
                   args.disk_writer))
    xml = """<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>{memory}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <cpu mode='custom' match='exact' check='none'>
    <model fallback='forbid'>qemu64</model>
    <feature policy='disable' name='svm'/>
  </cpu>
  <features><acpi/></features>
  <clock offset='utc'/>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>restart</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    {disk}
    <interface type='bridge'>
      <source bridge='br0'/>
      <mac address='{mac}'/>
      <model type='virtio'/>
    </interface>
    {extra_nics}
    <serial type='file'>
      <source path='{serial}' append='on'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
""".format(name=xml_escape(args.name), memory=args.memory, kernel=state["kernel"], initrd=state["initrd"],
           cmdline=cmdline, disk=disk_xml, mac=mac, serial=xml_escape(serial, {"'": "&apos;"}), extra_nics=extra_nics)
    xml_path = os.path.join(LAB, "guest-%s.xml" % args.name.encode("utf-8").hex())
    write(xml_path, xml)
    virsh(args.host, "define", xml_path)
    os.unlink(xml_path)
    started = time.time()
    virsh(args.host, "start", args.name)
    lock.close()
    deadline = started + args.timeout
    answer = None
    while time.time() < deadline:
        try:
            answer = http_get(ip)
            break
        except OSError:
            time.sleep(0.3)
    # the disk writer scans its disk before it writes: wait for its verdict, so that writing has begun
    diskscan = None
    while answer is not None and args.disk_writer and time.time() < deadline:
        try:
            with urllib.request.urlopen("http://%s/diskscan" % ip, timeout=1.0) as resp:
                diskscan = resp.read().decode().strip()
            break
        except OSError:
            time.sleep(0.3)
    if answer is None or (args.disk_writer and diskscan is None):
        log_tail = ""
        try:
            with open(os.path.join(host_dir(args.host), "var-log-libvirt", "qemu", "%s-serial.log" % args.name)) as fh:
                log_tail = fh.read()[-400:]
        except OSError:
            pass
        what = "HTTP" if answer is None else "its disk scan (/diskscan)"
        raise LabError("guest %s on %s did not answer %s at %s within %d s; console: %s"
                       % (args.name, args.host, what, ip, args.timeout, log_tail))
    result = {"name": args.name, "host": args.host, "address": ip, "answer": answer.strip(),
              "boot_seconds": round(time.time() - started, 1)}
    if args.disk_writer:
        result["diskscan"] = diskscan
    print(json.dumps(result))
    return 0


def cmd_guest_rm(args):
    state = require_up()
    found = [g for g in all_guests(state) if g["name"] == args.name]
    if not found:
        raise LabError("unknown guest %s: no lab host has it" % args.name)
    for guest in found:
        virsh(guest["host"], "destroy", args.name, check=False)
        virsh(guest["host"], "undefine", args.name, "--nvram", check=False)
        virsh(guest["host"], "undefine", args.name, check=False)
        for pool in ("default", SPARE_POOL, SHARED_POOL):
            if virsh(guest["host"], "pool-info", pool, check=False).returncode == 0:
                virsh(guest["host"], "pool-refresh", pool, check=False)
                virsh(guest["host"], "vol-delete", "%s.qcow2" % args.name, "--pool", pool, check=False)
    return 0


def cmd_status(args):
    state = load_state()
    if not state:
        result = {"hosts": [], "guests": [], "clusters": 0}
    else:
        hosts = []
        for name in state["hosts"]:
            alive = bool(pid_of(name)) and virsh(name, "version", check=False, timeout=20).returncode == 0
            marked = alive and "hostmaint:maintenance" in virsh(name, "secret-list", check=False, timeout=20).stdout
            hosts.append({"name": name, "address": host_address(state, name),
                          "migration_address": migration_address(state, name) if "migration_subnet" in state else None,
                          "libvirtd": "running" if alive else "stopped", "maintenance": bool(marked)})
        result = {"hosts": hosts, "guests": all_guests(state), "clusters": int(state.get("clusters") or 1)}
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for host in result["hosts"]:
            print("%-6s %-15s libvirtd %s%s" % (host["name"], host["address"], host["libvirtd"],
                                                ", in maintenance" if host["maintenance"] else ""))
        for guest in result["guests"]:
            print("  %-20s on %-5s %-15s %s" % (guest["name"], guest["host"], guest["address"], guest["state"]))
    return 0


def cmd_exec(args):
    require_up()
    if not args.command:
        raise LabError("give a command to run on %s" % args.host)
    pid = pid_of(args.host, "anchor")
    if pid is None:
        raise LabError("host %s is not running" % args.host)
    return subprocess.call(["nsenter", "-t", str(pid), "-m", "-u", "-n", "--"] + args.command)


# ---------------------------------------------------------------------------------------------- saved states

SAVED = os.path.join(LAB, "saved")
# What a saved state holds of each host: its private folders (of /etc, /var/lib/libvirt and /root: the
# configuration, PKI, libvirt's definitions, secrets, marks and holds), the nftables rules of its network
# namespace and the pools libvirt had started; of the controller, the CA of .lab/pki. /var/lib/libvirt/shared
# is the GlusterFS mount: the host's pool mounts it again, and what guests left on it is removed.
SAVED_DIRS = ("etc", "var-lib-libvirt", "root")
STATE_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


def saved_dir(label):
    if not STATE_NAME_RE.match(label or ""):
        raise LabError("a saved state's name is lower-case letters, digits and dashes, got %r" % (label,))
    return os.path.join(SAVED, label)


def parallel(func, names):
    """func(name) for every name at once (threads); raises the first LabError, after all have ended."""
    import threading
    errors = []

    def one(name):
        try:
            func(name)
        except (LabError, subprocess.TimeoutExpired) as exc:
            errors.append("%s: %s" % (name, exc))
    threads = [threading.Thread(target=one, args=(name,)) for name in names]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise LabError("; ".join(sorted(errors)))


def shared_files(name):
    """The files on the shared volume as host name sees it (empty when it is not mounted there)."""
    out = in_host(name, ["sh", "-c", "mountpoint -q %s && ls -A %s || true" % (SHARED_DIR, SHARED_DIR)]).stdout
    return sorted(line for line in out.splitlines() if line)


def cmd_save(args):
    """Save what the hosts are now (no guest may be defined) as state ``args.name``, for `lab reset`."""
    state = require_up()
    guests = all_guests(state)
    if guests:
        raise LabError("cannot save the lab as %s: guests are defined (%s); remove them first"
                       % (args.name, ", ".join(sorted("%s on %s" % (g["name"], g["host"]) for g in guests))))
    target = saved_dir(args.name)
    started = time.time()
    tmp = target + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    meta = {"hosts": {}, "saved": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}

    def save_host(name):
        hdir = host_dir(name)
        os.makedirs(os.path.join(tmp, name))
        for sub in SAVED_DIRS:
            run(["rsync", "-a", "--delete", "--exclude=/shared/", os.path.join(hdir, sub) + "/",
                 os.path.join(tmp, name, sub) + "/"], timeout=120)
        write(os.path.join(tmp, name, "nftables"), in_host(name, ["nft", "list", "ruleset"]).stdout, 0o600)
        pools = [line.strip() for line in virsh(name, "pool-list", "--name").stdout.splitlines() if line.strip()]
        meta["hosts"][name] = {"pools": sorted(pools), "shared": shared_files(name)}
    parallel(save_host, state["hosts"])
    if os.path.isdir(os.path.join(LAB, "pki")):
        run(["rsync", "-a", "--delete", os.path.join(LAB, "pki") + "/", os.path.join(tmp, "pki") + "/"])
    write(os.path.join(tmp, "meta.json"), json.dumps(meta, indent=2) + "\n")
    shutil.rmtree(target, ignore_errors=True)
    os.replace(tmp, target)
    log("saved the lab as %s in %.1f s" % (args.name, time.time() - started))
    return 0


def cmd_reset(args):
    """Put the lab back into saved state ``args.name``: every guest destroyed and undefined, each host's saved
    folders and nftables rules back, libvirtd restarted with them, the saved pools started, the shared volume
    as it was. Bounded: each host's daemons have BOUND_S to answer."""
    state = require_up()
    source = saved_dir(args.name)
    if not os.path.isdir(source):
        known = sorted(d for d in os.listdir(SAVED) if not d.endswith(".tmp")) if os.path.isdir(SAVED) else []
        raise LabError("the lab has no saved state %s (saved: %s): run `tests/lab/lab save %s` first"
                       % (args.name, ", ".join(known) or "none", args.name))
    with open(os.path.join(source, "meta.json")) as fh:
        meta = json.load(fh)
    if sorted(meta["hosts"]) != sorted(state["hosts"]):
        raise LabError("saved state %s belongs to a lab of hosts %s, this one has %s"
                       % (args.name, ", ".join(sorted(meta["hosts"])), ", ".join(state["hosts"])))
    started = time.time()

    def stop_host(name):
        if pid_of(name, "anchor") is None:
            raise LabError("host %s is not running (its namespaces are gone): take the lab down and up" % name)
        kill_pids([p for p in netns_pids(host_ns(name)) if "qemu" in _comm(p)])
        in_host(name, ["/etc/init.d/libvirtd", "stop"], timeout=60)
        # the shared volume is mounted again by the saved pool, if the state has one
        in_host(name, ["sh", "-c", "! mountpoint -q %s || umount -l %s" % (SHARED_DIR, SHARED_DIR)], timeout=30)
        hdir = host_dir(name)
        for sub in SAVED_DIRS:
            run(["rsync", "-a", "--delete", "--exclude=/shared/", os.path.join(source, name, sub) + "/",
                 os.path.join(hdir, sub) + "/"], timeout=120)
        in_host(name, ["nft", "flush", "ruleset"])
        in_host(name, ["nft", "-f", os.path.join(source, name, "nftables")])
        # the guests' and the pools' runtime state: a reset lab starts without them (a pool's state of before,
        # under another uuid, would hide the saved definition of the same name)
        for sub in ("run/libvirt/qemu", "run/libvirt/storage"):
            shutil.rmtree(os.path.join(hdir, sub), ignore_errors=True)

    def start_host_again(name):
        in_host(name, ["/etc/init.d/libvirtd", "start"], timeout=BOUND_S)
        active = [line.strip() for line in virsh(name, "pool-list", "--name").stdout.splitlines() if line.strip()]
        for pool in meta["hosts"][name]["pools"]:
            if pool not in active:
                virsh(name, "pool-start", pool, timeout=BOUND_S)
        for pool in meta["hosts"][name]["pools"]:
            virsh(name, "pool-refresh", pool, check=False, timeout=BOUND_S)

    parallel(stop_host, state["hosts"])
    parallel(start_host_again, state["hosts"])
    # the shared volume: what guests left there since the save goes (each host sees the same files)
    for name in state["hosts"]:
        if SHARED_POOL in meta["hosts"][name]["pools"]:
            extra = sorted(set(shared_files(name)) - set(meta["hosts"][name]["shared"]))
            for entry in extra:
                in_host(name, ["rm", "-rf", "--", os.path.join(SHARED_DIR, entry)])
            if extra:
                virsh(name, "pool-refresh", SHARED_POOL, check=False)
            break
    if os.path.isdir(os.path.join(source, "pki")):
        run(["rsync", "-a", "--delete", os.path.join(source, "pki") + "/", os.path.join(LAB, "pki") + "/"])
    left = all_guests(state)
    if left:
        raise LabError("guests survived the reset to %s: %s" % (args.name, ", ".join(g["name"] for g in left)))
    log("lab reset to %s in %.1f s" % (args.name, time.time() - started))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog="tests/lab/lab", description=__doc__.split("\n\n", 1)[0])
    sub = parser.add_subparsers(dest="command_name", required=True)
    up = sub.add_parser("up", help="build the lab's hypervisor hosts")
    up.add_argument("--hosts", type=int, default=3, help="number of hosts hv1..hvN (default 3)")
    up.add_argument("--clusters", type=int, default=1,
                    help="cut the hosts into this many clusters of consecutive hosts, each an inventory group "
                         "cluster_a, cluster_b, ... under hypervisors (default 1: the group hypervisors itself)")
    up.add_argument("--subnet", default=os.environ.get("HOSTMAINT_LAB_SUBNET") or None,
                    help="IPv4 subnet for the lab (default: HOSTMAINT_LAB_SUBNET, else the first free of %s)"
                    % ", ".join(SUBNET_CANDIDATES))
    up.set_defaults(func=cmd_up)
    down = sub.add_parser("down", help="remove everything the lab made")
    down.add_argument("--purge", action="store_true", help="also remove the cached guest kernel and initramfs")
    down.set_defaults(func=cmd_down)
    status = sub.add_parser("status", help="hosts and guests, read from the hosts' libvirt")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=cmd_status)
    guest = sub.add_parser("guest", help="lab guests")
    gsub = guest.add_subparsers(dest="guest_command", required=True)
    add = gsub.add_parser("add", help="define and start a guest that serves HTTP")
    add.add_argument("name")
    add.add_argument("--host", default="hv1")
    add.add_argument("--memory", type=int, default=256, help="MiB (default 256)")
    add.add_argument("--dirty", type=int, default=0, help="MiB of memory the guest rewrites per second")
    add.add_argument("--disk", choices=("local", "shared"),
                     help="a 1 GiB qcow2 disk (sparse) on host-private or shared storage")
    add.add_argument("--disk-writer", type=int, default=0, metavar="RATE",
                     help="records per second the guest writes to its disk and checks (tests/lab/guest/diskwriter.c; "
                          "needs --disk; default 0: none)")
    add.add_argument("--extra-bridge", action="append", default=[], metavar="BRIDGE",
                     help="a second NIC on this bridge of the host (repeatable)")
    add.add_argument("--timeout", type=int, default=90, help="seconds to wait for the guest's HTTP answer")
    add.set_defaults(func=cmd_guest_add)
    rm = gsub.add_parser("rm", help="destroy and undefine a guest wherever it is")
    rm.add_argument("name")
    rm.set_defaults(func=cmd_guest_rm)
    save = sub.add_parser("save", help="save the hosts as they are now (no guests) as a named state")
    save.add_argument("name", help="the state's name, e.g. bare or setup")
    save.set_defaults(func=cmd_save)
    reset = sub.add_parser("reset", help="put the lab back into a saved state (guests removed, daemons restarted)")
    reset.add_argument("name", help="the saved state's name")
    reset.set_defaults(func=cmd_reset)
    ex = sub.add_parser("exec", help="run a command inside a lab host")
    ex.add_argument("host")
    ex.add_argument("command", nargs=argparse.REMAINDER)
    ex.set_defaults(func=cmd_exec)
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("lab: must run as root (it creates namespaces and runs libvirtd)", file=sys.stderr)
        return 2
    try:
        return args.func(args)
    except LabError as exc:
        print("lab: %s" % exc, file=sys.stderr)
        return 1
    except subprocess.TimeoutExpired as exc:
        print("lab: %s timed out after %s s" % (" ".join(exc.cmd), exc.timeout), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
