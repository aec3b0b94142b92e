# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bad input, judged before anything is read or changed: one sentence naming the option, the value and what
is expected.

Standard library only (and the collection's errors, model, probe and uris modules), so plain pytest tests it with no
Ansible and no libvirt. Each ``check_*`` raises HostmaintError; the argument spec has already judged the types.
The engine modules' ``validate()`` runs them on the options alone (``check_engine_options``) and judges the options
into ``EngineOptions`` once (``engine_options``); what needs the hosts' guests (``named_guests``, ``unknown_named`` and
``unknown_guests_message``, ``canary_problem``) serves EngineModule.judge_named_guests (evacuate and restore, on their
survey), check_named_guests (live_migrate, migration_preflight) and check_canary_guest, which take what the module has
read and still run before anything changes.

Bounds (``BOUNDS``, documented in the hostmaint.libvirt.engine doc fragment): zero is allowed where it means
"off" or "no cap" (``bandwidth_mib``, ``pause_target_ms``, ``reserve_mib``, ``settle_s``); the most each option
takes is far beyond any real use and only catches a typo or a unit mistake (seconds given in milliseconds):

- ``max_inbound``, ``max_outbound``: 64 - libvirt's default migration port range (49152-49215, qemu.conf
  ``migration_port_min``/``_max``) holds 64 ports, one per incoming migration;
- ``connect_timeout``: 300 s - a peer that takes five minutes to accept a TCP connection is down;
- ``timeout_per_gib``: 3600 s per GiB (0.3 MiB/s), 24 times KubeVirt's 150 s; ``min_timeout``: 86400 s (a day);
- ``shutdown_timeout``: 3600 s; ``settle_s``: 600 s, ten minutes of watching for each guest;
- ``pause_target_ms`` and each of ``downtime_steps_ms``: 10000 ms - a guest paused 10 s has lost its TCP
  clients' patience; the ladder's default ceiling is 500 ms;
- ``bandwidth_mib``: 100000 MiB/s (about 800 Gbit/s); ``reserve_mib``: 1048576 MiB (1 TiB);
- ``capacity_mib`` (this host's and each destination's, ``capacity``): 16777216 MiB (16 TiB), beyond the memory of
  any host libvirt runs on today; a figure in KiB or bytes by mistake is far above it.
"""

from __future__ import annotations

import dataclasses
from typing import Dict

from ansible_collections.hostmaint.libvirt.plugins.module_utils import probe, uris
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import POLICIES, LadderPolicy, Limits

# The URI schemes libvirt's QEMU driver accepts: the driver name, alone or with a remote transport.
QEMU_SCHEMES = ("qemu", "qemu+tls", "qemu+ssh", "qemu+tcp", "qemu+unix", "qemu+libssh", "qemu+libssh2", "qemu+ext")
# Transports that reach only the libvirtd of the host the connection is opened on, never a peer.
LOCAL_SCHEMES = ("qemu+unix",)
# The paths of a QEMU driver URI served by libvirtd (qemu:///system, qemu:///session; the embedded driver's
# qemu:///embed has no daemon and cannot migrate).
QEMU_PATHS = ("/system", "/session")

# option: (least, most, what the number counts)
BOUNDS = dict(
    bandwidth_mib=(0, 100000, "MiB/s per migration"),
    connect_timeout=(1, 300, "seconds"),
    max_inbound=(1, 64, "libvirt's default migration port range has 64 ports, one per incoming migration"),
    max_outbound=(1, 64, "concurrent migrations out of this host, as many as one destination can take in"),
    min_timeout=(1, 86400, "seconds"),
    pause_target_ms=(0, 10000, "milliseconds"),
    reserve_mib=(0, 1048576, "MiB"),
    settle_s=(0, 600, "seconds"),
    shutdown_timeout=(1, 3600, "seconds"),
    timeout_per_gib=(1, 3600, "seconds per GiB of guest memory"),
)
DOWNTIME_STEP_MS = (1, 10000)
CAPACITY_MAX_MIB = 16777216

# The options that name guests, and what they map each guest to.
GUEST_OPTIONS = ("policies", "probes")


def check_bounds(params):
    """Every numeric option of ``BOUNDS`` that ``params`` gives lies within its bounds."""
    for option in sorted(BOUNDS):
        value = params.get(option)
        if value is None:
            continue
        least, most, unit = BOUNDS[option]
        if value < least:
            raise HostmaintError("%s must be %d or more, got %s" % (option, least, value), option=option)
        if value > most:
            raise HostmaintError("%s must be %d or less (%s), got %s" % (option, most, unit, value), option=option)


def check_downtime_steps(steps):
    """``downtime_steps_ms``: at least one step, each within DOWNTIME_STEP_MS, every one above the one before."""
    steps = list(steps or [])
    least, most = DOWNTIME_STEP_MS
    if not steps:
        raise HostmaintError("downtime_steps_ms is empty: give at least one downtime limit in milliseconds, such as "
                             "[50, 100, 200, 300, 500]", option="downtime_steps_ms")
    for step in steps:
        if step < least:
            raise HostmaintError("downtime_steps_ms must hold milliseconds of %d or more, got %s in %s"
                                 % (least, step, steps), option="downtime_steps_ms")
        if step > most:
            raise HostmaintError("downtime_steps_ms must hold milliseconds of %d or less, got %s in %s"
                                 % (most, step, steps), option="downtime_steps_ms")
    if any(later <= earlier for earlier, later in zip(steps, steps[1:])):
        raise HostmaintError("downtime_steps_ms must rise, each step above the one before, got %s" % steps,
                             option="downtime_steps_ms")


def check_uri(uri, option="uri", template=False):
    """A libvirt URI of the QEMU driver: a scheme of QEMU_SCHEMES, ``://``, an optional host, a path of QEMU_PATHS.

    ``template``: a peer's URI (``uri_template``): ``{host}`` in the host part, and no transport that reaches only
    this host.
    """
    shown = "%s %r" % (option, uri)
    example = "qemu+tls://{host}/system" if template else "qemu:///system"
    if not isinstance(uri, str) or not uri.strip():
        raise HostmaintError("%s is empty: give a libvirt URI such as %s" % (option, example), option=option)
    scheme, sep, rest = uri.partition("://")
    if not sep:
        raise HostmaintError("%s is not a libvirt URI: give one such as %s" % (shown, example), option=option)
    if scheme not in QEMU_SCHEMES:
        accepted = [s for s in QEMU_SCHEMES if not (template and s in LOCAL_SCHEMES)]
        raise HostmaintError("%s has the scheme %s, which libvirt does not accept for QEMU: use one of %s"
                             % (shown, scheme or "''", ", ".join(accepted)), option=option, scheme=scheme)
    authority, slash, path = rest.partition("/")
    if template:
        if "{host}" not in uri:
            raise HostmaintError("%s must contain {host}, where each peer's address goes, as in %s" % (shown, example),
                                 option=option)
        if "{host}" not in authority:
            raise HostmaintError("%s must have {host} in its host part, as in %s" % (shown, example), option=option)
        if scheme in LOCAL_SCHEMES:
            raise HostmaintError("%s uses %s, which reaches only this host's own libvirt, never a peer: use "
                                 "qemu+tls, qemu+ssh or qemu+tcp" % (shown, scheme), option=option, scheme=scheme)
    path = ("/" + path).split("?", 1)[0].rstrip("/") if slash else ""
    if path not in QEMU_PATHS:
        raise HostmaintError("%s has the path %s, which libvirt's QEMU driver does not know: end the URI with /system "
                             "(or /session), as in %s" % (shown, repr(path) if path else "''", example), option=option)


def _not_a_host(value):
    return any(c.isspace() or c in "/?#{}\"'" for c in value) or "://" in value


def check_host(value, subject, address=False):
    """A host name (or, ``address``, an address that goes into a URI): no scheme, path or spaces, and an IPv6
    address in brackets. ``subject`` names the value in the sentence, with ``%r`` where the value goes
    ("name %r", "address %r of destination hv2 in destinations")."""
    kind = "a host name or address" if address else "a host name"
    if not isinstance(value, str) or not value.strip():
        raise HostmaintError("%s is empty: give %s" % (subject.replace(" %r", ""), kind))
    shown = subject % (value,)
    if _not_a_host(value):
        raise HostmaintError("%s is not %s: give it alone, without a scheme, path or spaces" % (shown, kind))
    if address and uris.bare_ipv6(value):
        raise HostmaintError("%s is an IPv6 address: write it in brackets, [%s], so it fits in a URI" % (shown, value))


def check_identity(params):
    """``name``, ``address`` and ``destinations`` of an engine module: host names, each destination once, and not
    only this host itself (``name``; unknown before the module asks libvirt when not given)."""
    if params.get("name") is not None:
        check_host(params["name"], "name %r")
    if params.get("address"):
        check_host(params["address"], "address %r", address=True)
    names = []
    for entry in params.get("destinations") or []:
        name = entry.get("name")
        if not isinstance(name, str) or not name.strip():
            raise HostmaintError("destinations lists a host with an empty name: give each host's name",
                                 option="destinations")
        if _not_a_host(name):
            raise HostmaintError("destinations lists %r, which is not a host name: give the host's name, and its "
                                 "address in address, without a scheme, path or spaces" % name, option="destinations")
        address = entry.get("address") or name
        check_host(address, "address %%r of destination %s in destinations" % name, address=True)
        names.append(name)
    duplicates = sorted(set(n for n in names if names.count(n) > 1))
    if duplicates:
        raise HostmaintError("destinations lists %s more than once: give each host once" % ", ".join(duplicates),
                             option="destinations")
    me = params.get("name")
    if me and names and all(name == me for name in names):
        raise HostmaintError("the only destination listed in destinations is %s, the source host itself: list the "
                             "other hosts of its cluster" % me, option="destinations")


def check_policies(policies):
    """``policies``: each guest's policy is one of POLICIES."""
    for guest in sorted(policies or {}, key=str):
        policy = policies[guest]
        if policy not in POLICIES:
            raise HostmaintError("policies gives guest %s the policy %r, expected one of %s"
                                 % (guest, policy, ", ".join(POLICIES)), option="policies", guest=guest)


def check_probes(probes):
    """``probes``: each guest's probe is a URL probe.parse accepts."""
    for guest in sorted(probes or {}, key=str):
        probe.parse(probes[guest], guest, source="probes")


def capacity(value, host):
    """A declared capacity in MiB as an int (``capacity_mib`` of ``host``: this host's option, or a destination's, as
    the inventory's ``hostmaint_libvirt_capacity_mib`` or the task gives it); None and 0 are "not declared" (0).

    A whole number (an int, a whole float, or a string of digits, as an extra variable on the command line comes)
    from 0 to CAPACITY_MAX_MIB; anything else raises HostmaintError in one sentence naming the host and the value.
    """
    if value is None or value == "":
        return 0
    number = None
    if isinstance(value, bool):
        number = None  # true and false are no amounts of memory
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().lstrip("-").isdigit():
        number = int(value.strip())
    if number is None:
        raise HostmaintError("capacity_mib of %s must be a whole number of MiB (0: not declared), got %r"
                             % (host, value), option="capacity_mib", host=host)
    if number < 0:
        raise HostmaintError("capacity_mib of %s must be 0 (not declared) or more, got %s" % (host, number),
                             option="capacity_mib", host=host)
    if number > CAPACITY_MAX_MIB:
        raise HostmaintError("capacity_mib of %s must be %d MiB (16 TiB) or less, got %s: is it in KiB or bytes?"
                             % (host, CAPACITY_MAX_MIB, number), option="capacity_mib", host=host)
    return number


def capacities(params):
    """(this host's declared capacity, {destination: its declared capacity} of those that declare one), each judged
    by ``capacity``; this host is named by ``name``, or "this host" before libvirt is asked."""
    own = capacity(params.get("capacity_mib"), params.get("name") or "this host")
    found = {}
    for entry in params.get("destinations") or []:
        declared = capacity(entry.get("capacity_mib"), entry.get("name"))
        if declared:
            found[entry["name"]] = declared
    return own, found


def check_conflicts(params):
    """Options that contradict each other: asked for, and turned off by another option."""
    if params.get("canary_guest") and params.get("canary") is False:
        raise HostmaintError("canary_guest %s asks for a canary but canary is false: set canary to true or leave "
                             "canary_guest out" % params["canary_guest"], option="canary_guest")
    if params.get("probes") and params.get("settle_s") == 0:
        guests = ", ".join(sorted(str(name) for name in params["probes"]))
        raise HostmaintError("probes gives %s a probe but settle_s is 0, which turns off the settle check the probes "
                             "run in: set settle_s to 1 or more, or leave probes out" % guests, option="probes")


def check_engine_options(params):
    """Every check of an engine module's options that needs nothing but the options, in the order a user reads them."""
    check_uri(params.get("uri"), "uri")
    check_uri(params.get("uri_template"), "uri_template", template=True)
    check_identity(params)
    check_bounds(params)
    capacities(params)
    check_downtime_steps(params.get("downtime_steps_ms"))
    check_policies(params.get("policies"))
    check_probes(params.get("probes"))
    check_conflicts(params)


@dataclasses.dataclass(frozen=True)
class EngineOptions:
    """The values an engine module's run builds from its options, judged once (``engine_options``, from
    validate()): the placement limits, the convergence ladder, and the declared capacities (``capacities``: this
    host's, and the destinations' that declare one)."""

    limits: Limits
    ladder: LadderPolicy
    capacity_mib: int = 0
    capacities: Dict[str, int] = dataclasses.field(default_factory=dict)


def engine_options(params):
    """The EngineOptions of an engine module's ``params``; raises DecisionError for limits or a ladder that no run
    can honour (check_engine_options has judged the options one by one)."""
    limits = Limits(reserve_mib=params["reserve_mib"], max_inbound=params["max_inbound"],
                    max_outbound=params["max_outbound"], allow_storage_copy=params["allow_storage_copy"],
                    allow_partial=params["allow_partial"]).validate()
    ladder = LadderPolicy(downtime_steps_ms=list(params["downtime_steps_ms"]), auto_converge=params["auto_converge"],
                          postcopy=params["postcopy"], timeout_s_per_gib=float(params["timeout_per_gib"]),
                          timeout_floor_s=float(params["min_timeout"]),
                          no_progress_timeout_s=min(60.0, float(params["min_timeout"]))).validate()
    own, others = capacities(params)
    return EngineOptions(limits=limits, ladder=ladder, capacity_mib=own, capacities=others)


def named_guests(params):
    """{option: sorted guest names} of the options that name guests (GUEST_OPTIONS) and name any."""
    found = {}
    for option in GUEST_OPTIONS:
        names = sorted(str(name) for name in (params.get(option) or {}))
        if names:
            found[option] = names
    return found


def unknown_guests_message(option, names, looked_on, unasked=()):
    """The sentence for guests that ``option`` names and that no host of ``looked_on`` has: a failure's, or, when
    hosts that did not answer (``unasked``) might have them, a warning's."""
    names = ", ".join(names)
    plural = "," in names
    said = "%s names %s %s, which %s defined on none of %s" % (
        option, "guests" if plural else "guest", names, "are" if plural else "is", ", ".join(looked_on))
    if unasked:
        return "%s, and %s did not answer: check that %s %s there and not a typo" % (
            said, ", ".join(unasked), names, "are" if plural else "is")
    return "%s: name guests of these hosts, or remove %s from %s" % (said, names, option)


def unknown_named(params, known, looked_on, unasked=()):
    """[(option, names, sentence)] for the guests each option of ``params`` names (``named_guests``) that are not
    ``known`` (the names of the guests found on the hosts of ``looked_on``), by option: a failure, or, when hosts
    that did not answer (``unasked``) might have them, a warning (``unknown_guests_message``)."""
    found = []
    for option, names in sorted(named_guests(params).items()):
        missing = [name for name in names if name not in known]
        if missing:
            found.append((option, missing, unknown_guests_message(option, missing, looked_on, unasked)))
    return found


def canary_problem(plan, named):
    """What is wrong with ``canary_guest`` ``named`` for a restore ``plan``, or None.

    None when it is a live migration of the plan, or already home (nothing to prove). Otherwise the sentence: it
    cannot come home in this run (with its first reason), it comes home another way (a start or a definition move),
    or it is none of the guests coming home.
    """
    if not named:
        return None
    for move in plan.moves:
        if move.guest == named:
            if move.action == "migrate":
                return None
            return ("canary_guest %s comes home to %s by %s, not by live migration: name a guest that migrates home, "
                    "or leave canary_guest out" % (named, plan.home, move.action.replace("_", " ")))
    if any(skipped.guest == named and skipped.code == "already_home" for skipped in plan.skipped):
        return None
    for blocked in plan.not_home:
        if blocked.guest == named:
            reasons = "; ".join(sorted(set(r.message for r in blocked.reasons))) or "blocked"
            return ("canary_guest %s cannot come home to %s in this run (%s): name another guest, or leave "
                    "canary_guest out" % (named, plan.home, reasons))
    migrating = sorted(move.guest for move in plan.moves if move.action == "migrate")
    return ("canary_guest %s is not among the guests that migrate home to %s (%s): name one of them, or leave "
            "canary_guest out" % (named, plan.home, ", ".join(migrating) or "none in this run"))
