# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The health gate's verdicts: what the health_gate role gathered, judged check by check.

Pure, standard library only (the role calls it through the hostmaint.libvirt.health_verdict filter).
Every check is a dict ``check``, ``host``, ``ok`` and ``msg``, where ``msg`` is one sentence naming the
host and the check.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation

# libvirt states of a guest that needs an operator before its host is touched or its guests return
UNHEALTHY_STATES = ("paused", "crashed")


def _failed(result):
    return not isinstance(result, dict) or bool(result.get("failed") or result.get("unreachable"))


def _message(result, default="no answer"):
    if not isinstance(result, dict):
        return default
    text = result.get("stderr") or result.get("stdout") or result.get("msg") or default
    return " ".join(str(text).split())[:300]


def libvirtd(host, info):
    if _failed(info):
        return dict(check="libvirtd", host=host, ok=False, msg="%s: libvirtd does not answer: %s" % (host, _message(info)))
    return dict(check="libvirtd", host=host, ok=True, msg="%s: libvirtd answers" % host)


def at_generation(host, info, minimum):
    found = ((info or {}).get("hypervisor") or {}).get("generation") if isinstance(info, dict) else None
    ok = found is not None and generation.compare(found, minimum) >= 0
    return dict(check="generation", host=host, ok=ok, msg="%s: generation %s %s %s" % (
        host, found or "unknown", "is at least" if ok else "is older than the expected", minimum))


def peers(host, results):
    """One check per peer connection (the role's command results, looped over the peers)."""
    checks = []
    for result in results or []:
        peer = result.get("item")
        if result.get("rc") == 0:
            message, ok = "%s: reaches %s over the migration transport" % (host, peer), True
        else:
            reason = "timed out" if result.get("rc") == 124 else _message(result, "rc %s" % result.get("rc"))
            message, ok = "%s: cannot reach %s over the migration transport: %s" % (host, peer, reason), False
        checks.append(dict(check="peer", host=host, ok=ok, msg=message))
    return checks


def guests(host, cluster, results):
    """Guests paused or crashed on any host of the cluster (guest_info results looped over its hosts)."""
    checks, bad = [], []
    for result in results or []:
        where = result.get("item")
        if _failed(result) or "guests" not in result:
            message = "%s: cannot list the guests of %s: %s" % (host, where, _message(result))
            checks.append(dict(check="guests", host=host, ok=False, msg=message))
            continue
        bad += ["%s is %s on %s" % (g.get("name"), g.get("state"), where) for g in result["guests"]
                if g.get("state") in UNHEALTHY_STATES]
    if bad:
        message = "%s: in cluster %s, %s" % (host, cluster, ", ".join(bad))
    else:
        message = "%s: no guest of cluster %s is paused or crashed" % (host, cluster)
    checks.append(dict(check="guests", host=host, ok=not bad, msg=message))
    return checks


def room(host, cluster, result):
    """The evacuation's plan (migration_preflight): whether the rest of the cluster has room now."""
    if isinstance(result, dict) and result.get("ready") is True:
        message = "%s: the rest of cluster %s has room for its guests now" % (host, cluster)
        return dict(check="room", host=host, ok=True, msg=message)
    if _failed(result) or not isinstance(result, dict):
        why = "the plan failed: %s" % _message(result)
    else:
        blocked = ["%s (%s)" % (b.get("guest"), "; ".join(sorted(set(r.get("message", "") for r in b.get("reasons") or []))))
                   for b in result.get("blocked") or []]
        why = "no room for %s" % ", ".join(blocked) if blocked else "the plan would not proceed"
    return dict(check="room", host=host, ok=False, msg="%s: the rest of cluster %s has %s" % (
        host, cluster, why if why.startswith("no room") else "no room for its guests: " + why))


def commands(host, results):
    checks = []
    for result in results or []:
        name = (result.get("item") or {}).get("name", "command")
        if result.get("rc") == 0:
            message = "%s: check %s passed" % (host, name)
        else:
            message = "%s: check %s failed (exit %s): %s" % (host, name, result.get("rc"), _message(result, "no output"))
        checks.append(dict(check=name, host=host, ok=result.get("rc") == 0, msg=message))
    return checks


def verdict(gathered, host, phase, cluster, min_generation=""):
    """Every check of the gate, from what the role gathered: ``info`` (hypervisor_info), ``peers``,
    ``guests`` and ``commands`` (looped results), ``room`` (migration_preflight, phase before only)."""
    info = gathered.get("info")
    checks = [libvirtd(host, info)]
    if min_generation and not _failed(info):
        checks.append(at_generation(host, info, min_generation))
    checks += peers(host, (gathered.get("peers") or {}).get("results"))
    checks += guests(host, cluster, (gathered.get("guests") or {}).get("results"))
    if phase == "before":
        checks.append(room(host, cluster, gathered.get("room")))
    checks += commands(host, (gathered.get("commands") or {}).get("results"))
    return dict(phase=phase, host=host, checks=checks, ok=all(c["ok"] for c in checks),
                failed=[c["msg"] for c in checks if not c["ok"]])
