# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Molecule scenarios' guests and their judge: what a user would see, read from the lab itself.

    guests.py add NAME@HOST[:dirty=MIB][:disk=local|shared[:writer=RATE]][:home] ...
                                               start lab guests, record who each is, probe them from now on
                                               (home: its settings say return="home")
    guests.py check --expect origin|away|HOST|NAME=WHERE,... [--marked HOST ...] [--unmarked HOST ...]
                    [--disks-on POOL_DIR]
    guests.py watch                            from now on, note the most memory of guests each host runs or receives
    guests.py stop                             stop the probes, forget the guests (destroy calls it; nothing to stop is fine)

Everything lives in $MOLECULE_EPHEMERAL_DIRECTORY: guests.json (name, origin host, address, HTTP answer
"<name> <boot id>", lost writes counted so far, for a disk writer the last record it had acknowledged),
probes.json (the HTTP prober's figures, 10 Hz), ping-NAME.txt (iputils ping at 50 Hz: the guest's real outage,
with no TCP retransmission in it) and probes.pids.

check fails, with one line per problem, unless every recorded guest: is defined on exactly one host and runs
there, persistently; runs where --expect says (origin: the host it started on; away: any other; HOST: that one;
or per guest, NAME=WHERE separated by commas, each WHERE one of those or any);
answers as the same instance (same boot id, so it never restarted); found no more lost writes in its own memory
than when it started (guests given dirty=); answered HTTP as that one instance only, all the time it was probed;
and never went more than ICMP_GAP_MAX_S without answering a ping. A guest given writer= (the disk writer,
tests/lab/guest/diskwriter.c) must read back every record it had acknowledged (/cgi-bin/diskverify ok, none missing
or damaged) up to at least the number recorded at add and at the last check. With --disks-on, every guest given
disk= must have its disk (live and inactive definitions) under POOL_DIR. --marked and --unmarked say which hosts
must (and must not) be in maintenance. With --most-mib MIB (after watch), no host ever ran or received guests of
more than MIB in all (every lab guest counts its memory: 256 MiB unless added otherwise).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
LAB = os.path.join(ROOT, "tests", "lab", "lab")
sys.path.insert(0, os.path.join(ROOT, "tests", "bench"))
import figures  # noqa: E402  pylint: disable=wrong-import-position
# the lab guests' HTTP answer and memory check, as the bench and the lab tests read them
from bench_evacuate import answer, memory_errors  # noqa: E402  pylint: disable=wrong-import-position
from bench_evacuate import disk_acked as acked, disk_verified  # noqa: E402  pylint: disable=wrong-import-position

ICMP_INTERVAL = 0.02
# the longest ping gap a moved guest may show (the tests' judge allows the same: tests/integration/conftest.py)
ICMP_GAP_MAX_S = 1.0
HTTP_INTERVAL = 0.1
PROBE_LIMIT_S = 1800
WATCH_INTERVAL = 0.3
MEMORY_MIB = 256  # a lab guest's memory (tests/lab/lab guest add's default)


def ephemeral(name):
    directory = os.environ.get("MOLECULE_EPHEMERAL_DIRECTORY")
    if not directory:
        raise SystemExit("guests.py: MOLECULE_EPHEMERAL_DIRECTORY is not set (run it from a scenario)")
    os.makedirs(directory, exist_ok=True)
    return os.path.join(directory, name)


def lab(*args, timeout=300):
    proc = subprocess.run([LAB] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False)
    if proc.returncode != 0:
        raise SystemExit("tests/lab/lab %s failed: %s" % (" ".join(args), (proc.stderr or proc.stdout).strip()))
    return proc.stdout


def write_json(path, data):
    with open(path + ".tmp", "w") as handle:
        json.dump(data, handle, indent=1)
    os.replace(path + ".tmp", path)


def read_json(path, default=None):
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return default


def first_acked(address, within=10.0):
    """The writer's acknowledged number once it has acknowledged a record (a check needs something to look for)."""
    deadline = time.time() + within
    while True:
        found = acked(address)
        if (found or 0) > 0 or time.time() > deadline:
            return found
        time.sleep(0.2)


def cmd_add(specs):
    recorded = read_json(ephemeral("guests.json"), [])
    for spec in specs:
        match = re.match(r"^([^@]+)@(hv[0-9]+)((?::(?:dirty=[0-9]+|disk=(?:local|shared)|writer=[0-9]+|home))*)$", spec)
        options = dict((o.split("=") + [True])[:2] for o in match.group(3).split(":")[1:]) if match else {}
        if not match or ("writer" in options and "disk" not in options):
            raise SystemExit("guests.py add: %r is not NAME@HOST[:dirty=MIB][:disk=local|shared[:writer=RATE]][:home]"
                             % spec)
        name, host = match.group(1), match.group(2)
        dirty, disk, writer = options.get("dirty"), options.get("disk"), options.get("writer")
        extra = (["--dirty", dirty] if dirty else []) + (["--disk", disk] if disk else []) + (
            ["--disk-writer", writer] if writer else [])
        added = json.loads(lab("guest", "add", name, "--host", host, *extra))
        address = added["address"]
        if options.get("home"):  # it demands its home: a roll whose guests stay brings it back all the same
            lab("exec", host, "virsh", "-q", "metadata", name, "--uri", "urn:hostmaint:libvirt:settings:1", "--key",
                "hostmaint", "--set", '<settings return="home"/>', "--live", "--config")
        recorded.append(dict(name=name, host=host, address=address, answer=answer(address, timeout=2.0),
                             lost_writes=memory_errors(address) if dirty else None, disk=disk,
                             disk_writer=int(writer) if writer else None,
                             acked_at_add=first_acked(address) if writer else None))
        recorded[-1]["acked"] = recorded[-1]["acked_at_add"]
    write_json(ephemeral("guests.json"), recorded)
    # the probes: one HTTP prober for every guest, one ping each
    pids = read_json(ephemeral("probes.pids"), [])
    started = time.time()
    for guest in recorded[-len(specs):]:
        out = open(ephemeral("ping-%s.txt" % guest["name"]), "w")
        ping = subprocess.Popen(["ping", "-D", "-n", "-i", str(ICMP_INTERVAL), "-W", "1", "-w", str(PROBE_LIMIT_S),
                                 guest["address"]], stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        pids.append(ping.pid)
        guest["probed_since"] = started
    write_json(ephemeral("guests.json"), recorded)
    prober = subprocess.Popen([sys.executable, os.path.abspath(__file__), "probe"], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=open(ephemeral("prober.log"), "w"),
                              start_new_session=True)
    pids.append(prober.pid)
    write_json(ephemeral("probes.pids"), pids)
    print(json.dumps(recorded))
    return 0


def cmd_probe():
    """The HTTP prober (started by add, in the background): every guest at 10 Hz until PROBE_LIMIT_S passes or
    stop kills it; probes.json holds, per guest, the answers seen, failed probes and the longest time without
    an answer."""
    recorded = read_json(ephemeral("guests.json"), [])
    now = time.time()
    stats = dict((g["name"], dict(answers=[], failed=0, longest_gap_s=0.0, last_ok=now)) for g in recorded)
    started = written = now
    while time.time() - started < PROBE_LIMIT_S:
        for guest in recorded:
            entry = stats[guest["name"]]
            try:
                said = answer(guest["address"], timeout=0.5)
                if said not in entry["answers"]:
                    entry["answers"].append(said)
                now = time.time()
                entry["longest_gap_s"] = max(entry["longest_gap_s"], round(now - entry["last_ok"], 2))
                entry["last_ok"] = now
            except OSError:
                entry["failed"] += 1
        if time.time() - written > 0.5:
            write_json(ephemeral("probes.json"), stats)
            written = time.time()
        time.sleep(HTTP_INTERVAL)
    write_json(ephemeral("probes.json"), stats)
    return 0


def cmd_watch():
    """Start the memory watch in the background (its pid joins the probes', so stop ends it)."""
    pids = read_json(ephemeral("probes.pids"), [])
    watch = subprocess.Popen([sys.executable, os.path.abspath(__file__), "watching"], stdin=subprocess.DEVNULL,
                             stdout=subprocess.DEVNULL, stderr=open(ephemeral("watch.log"), "w"), start_new_session=True)
    pids.append(watch.pid)
    write_json(ephemeral("probes.pids"), pids)
    return 0


def cmd_watching():
    """Every WATCH_INTERVAL until PROBE_LIMIT_S: each host's guests as its libvirt lists them, running or paused (an
    incoming migration is a paused guest there), by their memory; memory.json holds the most each host held."""
    status = json.loads(lab("status", "--json"))
    hosts = [h["name"] for h in status["hosts"]]
    sizes = dict((g["name"], MEMORY_MIB) for g in read_json(ephemeral("guests.json"), []))
    most, samples, started = dict((h, 0) for h in hosts), 0, time.time()
    while time.time() - started < PROBE_LIMIT_S:
        for host in hosts:
            out = subprocess.run([LAB, "exec", host, "virsh", "-q", "list", "--name"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60, check=False)
            names = [line.strip() for line in out.stdout.splitlines() if line.strip()]
            most[host] = max(most[host], sum(sizes.get(name, MEMORY_MIB) for name in names))
        samples += 1
        write_json(ephemeral("memory.json"), dict(most_mib=most, samples=samples))
        time.sleep(WATCH_INTERVAL)
    return 0


def defined_on(status_hosts, name):
    """{host: (state, persistent)} of every host whose libvirt lists the guest."""
    found = {}
    for host in status_hosts:
        out = subprocess.run([LAB, "exec", host, "virsh", "-q", "dominfo", name], stdout=subprocess.PIPE,
                             stderr=subprocess.DEVNULL, universal_newlines=True, timeout=60, check=False)
        if out.returncode == 0:
            state = re.search(r"^State:\s+(.+)$", out.stdout, re.M)
            persistent = re.search(r"^Persistent:\s+(\S+)$", out.stdout, re.M)
            found[host] = (state.group(1).strip() if state else "?", bool(persistent and persistent.group(1) == "yes"))
    return found


def disk_sources(host, name):
    """(live, inactive) source file of the guest's vda on host."""
    found = []
    for extra in ([], ["--inactive"]):
        xml = lab("exec", host, "virsh", "dumpxml", name, *extra)
        match = re.search(r"<disk\b(?:(?!</disk>).)*?<source file='([^']+)'(?:(?!</disk>).)*?<target dev='vda'", xml, re.S)
        found.append(match.group(1) if match else None)
    return tuple(found)


def disk_problems(guest, host, disks_on):
    """What is wrong with a guest's disk: where it is (--disks-on) and, for a writer, its records."""
    name, problems = guest["name"], []
    if disks_on and guest.get("disk"):
        live, inactive = disk_sources(host, name)
        for which, path in (("live", live), ("inactive", inactive)):
            if not path or not path.startswith(disks_on.rstrip("/") + "/"):
                problems.append("%s's %s definition has its disk at %s, not under %s" % (name, which, path, disks_on))
    if guest.get("disk_writer"):
        wanted = max(guest.get("acked_at_add") or 0, guest.get("acked") or 0)
        try:
            upper, line = disk_verified(guest["address"])
        except OSError as exc:
            upper, line = None, "no answer (%s)" % exc
        if upper is None:
            problems.append("%s's disk lost acknowledged writes: %s" % (name, line))
        elif upper < wanted:
            problems.append("%s's disk holds records up to %s, but %d were acknowledged before (at add %s): %s" % (
                name, upper, wanted, guest.get("acked_at_add"), line))
        else:
            try:  # what the next check must find at least (acknowledged; a record on the disk may not be yet)
                guest["acked"] = max(wanted, acked(guest["address"]) or 0)
            except OSError:
                pass
            print("%s: disk writer ok, %s (at least %d wanted)" % (name, line, wanted))
    return problems


def cmd_check(expect, marked, unmarked, disks_on=None, most_mib=None):
    recorded = read_json(ephemeral("guests.json"))
    if not recorded:
        raise SystemExit("guests.py check: no guests were recorded (guests.py add)")
    status = json.loads(lab("status", "--json"))
    hosts = [h["name"] for h in status["hosts"]]
    probes = read_json(ephemeral("probes.json"), {})
    now = time.time()
    problems = []
    for host in status["hosts"]:
        if host["name"] in marked and not host["maintenance"]:
            problems.append("%s is not in maintenance" % host["name"])
        if host["name"] in unmarked and host["maintenance"]:
            problems.append("%s is still in maintenance" % host["name"])
    for guest in recorded:
        name = guest["name"]
        where = defined_on(hosts, name)
        if len(where) != 1:
            problems.append("%s is defined on %s, not on exactly one host" % (name, sorted(where) or "no host"))
            continue
        host, (state, persistent) = list(where.items())[0]
        if state != "running" or not persistent:
            problems.append("%s on %s is %s%s" % (name, host, state, "" if persistent else " and transient"))
        problems += disk_problems(guest, host, disks_on)
        where_wanted = expect
        if "=" in expect:  # per guest: NAME=WHERE,...
            where_wanted = dict(item.split("=", 1) for item in expect.split(",")).get(name, "origin")
        wanted = {"origin": host == guest["host"], "away": host != guest["host"], "any": True}.get(
            where_wanted, host == where_wanted)
        if not wanted:
            problems.append("%s runs on %s; expected %s (it started on %s)" % (
                name, host, where_wanted, guest["host"]))
        try:
            said = answer(guest["address"], timeout=5)
        except OSError as exc:
            said = "no answer (%s)" % exc
        if said != guest["answer"]:
            problems.append("%s answers %r, was %r: it restarted or is not itself" % (name, said, guest["answer"]))
        if guest.get("lost_writes") is not None:
            errors = memory_errors(guest["address"])
            if errors is None or errors > guest["lost_writes"]:
                problems.append("%s's memory check reports %s lost writes (had %d)" % (
                    name, errors, guest["lost_writes"]))
        seen = probes.get(name)
        if seen is None:
            problems.append("%s was not probed over HTTP" % name)
        else:
            others = [a for a in seen["answers"] if a != guest["answer"]]
            if others:
                problems.append("%s answered as another instance while probed: %s" % (name, others))
            if seen["longest_gap_s"] >= 3.0:
                problems.append("%s gave no HTTP answer for %.1f s" % (name, seen["longest_gap_s"]))
        try:
            with open(ephemeral("ping-%s.txt" % name)) as handle:
                gap = figures.icmp_gap(handle.read(), ICMP_INTERVAL, guest.get("probed_since"), now)
        except FileNotFoundError:
            gap = dict(longest_gap_s=None)
        if gap["longest_gap_s"] is None or gap["longest_gap_s"] > ICMP_GAP_MAX_S:
            problems.append("%s did not answer pings for %s s (at most %.1f s allowed)" % (
                name, gap["longest_gap_s"], ICMP_GAP_MAX_S))
        else:
            print("%s: on %s, same instance, longest ping gap %.3f s, HTTP longest gap %s s, %s failed probes" % (
                name, host, gap["longest_gap_s"], seen and seen["longest_gap_s"], seen and seen["failed"]))
    if most_mib is not None:
        watched = read_json(ephemeral("memory.json"))
        if not watched or watched["samples"] < 10:
            problems.append("the memory watch has too few samples (%s): was guests.py watch started?" % (
                watched and watched["samples"]))
        else:
            over = dict((h, m) for h, m in watched["most_mib"].items() if m > most_mib)
            if over:
                problems.append("hosts held more than %d MiB of guests at a time: %s" % (most_mib, over))
            print("memory watch: the most each host held, %d samples: %s (at most %d MiB allowed)" % (
                watched["samples"], watched["most_mib"], most_mib))
    write_json(ephemeral("guests.json"), recorded)  # the writers' acknowledged numbers, for the next check
    if problems:
        print("; ".join(problems), file=sys.stderr)
        return 1
    return 0


def cmd_stop():
    for pid in read_json(ephemeral("probes.pids"), []):
        try:
            os.killpg(pid, signal.SIGTERM)
        except OSError:
            pass
    # and forget the guests: the next scenario run records its own (destroy runs first and last)
    directory = os.path.dirname(ephemeral("probes.pids"))
    for entry in os.listdir(directory):
        if entry in ("probes.pids", "guests.json", "probes.json", "prober.log", "memory.json", "watch.log") or \
                re.match(r"^ping-.+\.txt$", entry):
            os.unlink(os.path.join(directory, entry))
    return 0


def main(argv):
    if argv[:1] == ["add"] and len(argv) > 1:
        return cmd_add(argv[1:])
    if argv[:1] == ["probe"]:
        return cmd_probe()
    if argv[:1] == ["stop"]:
        return cmd_stop()
    if argv[:1] == ["watch"]:
        return cmd_watch()
    if argv[:1] == ["watching"]:
        return cmd_watching()
    if argv[:1] == ["check"]:
        expect, marked, unmarked, key, disks_on, most_mib = None, [], [], None, None, None
        for arg in argv[1:]:
            if arg in ("--expect", "--marked", "--unmarked", "--disks-on", "--most-mib"):
                key = arg
            elif key == "--expect":
                expect = arg
            elif key == "--most-mib":
                most_mib = int(arg)
            elif key == "--disks-on":
                disks_on = arg
            elif key == "--marked":
                marked.append(arg)
            elif key == "--unmarked":
                unmarked.append(arg)
        if not expect:
            raise SystemExit("guests.py check: give --expect origin, away or a host")
        return cmd_check(expect, marked, unmarked, disks_on, most_mib)
    raise SystemExit(__doc__)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
