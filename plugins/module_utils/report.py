# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report: what one maintenance run did, as data (JSON) and as a short summary (Markdown).

Standard library only (and the collection's own errors and model modules): the run_report module calls it
on the controller, and plain ``pytest`` tests it.

``build(run)`` takes what a playbook gathered during the run::

    run_id:     str, required (it names the files)
    playbook:   str, e.g. "evacuate" ("playbooks/evacuate.yml" is read as "evacuate")
    started:    ISO-8601 time or None      ended: ISO-8601 time or None
    check_mode: bool, optional (guessed from the results when left out)
    hosts:      {host: {steps:    [{name, status (ok|changed|failed|skipped), started, ended, msg}],
                        gates:    [{check, host, ok, msg}],
                        evacuate: the registered result of hostmaint.libvirt.evacuate,
                        restore:  the registered result of hostmaint.libvirt.restore,
                        storage:  the registered result of hostmaint.libvirt.disk_move}}

Everything but ``run_id`` may be missing or None; a result may be a skipped task's (``{skipped: true}``) or a
failed one's (``{failed: true, msg: ...}``, with or without ``plan`` and ``outcomes``). Nothing under a key
that contains one of SECRET_WORDS is copied, at any depth (host names, the keys of ``hosts``, are data).

The algorithm, in one pass per host (hosts sorted by name):

1. steps and gates are normalised (status lower case, times parsed, ``ok`` a bool);
2. each engine result (evacuate, then restore) gives its plan, its outcomes flattened into moves (the
   engine's keys: guest, source, destination, outcome, downtime_ms, duration_s, bytes_transferred, reason,
   timeline ...), the guests its plan blocked (``plan.blocked``, ``plan.not_home``) or skipped, and what it
   says about the host's maintenance mark; a check-mode result (a plan and no outcomes) gives its planned
   moves with outcome ``planned``;
3. the host is ``failed`` when a step failed, a gate did not pass, an engine result failed or a move failed
   or was aborted; else ``partial`` when a guest was blocked, not run, or still runs on an evacuated host
   against the plan; else ``ok``. The run's status is the worst of its hosts' (``ok`` with no host);
4. next steps are plain sentences, per host: what failed and how to retry, what could not move and why,
   and, last, that the host is still in maintenance and how to end it.

Totals: ``worst_pause`` is the longest switchover pause (downtime_ms) of any move, with its guest;
``longest_move`` the longest duration_s of a move that moved its guest; ``blocked`` counts the moves whose
outcome is blocked and the guests the plans blocked or could not bring home.

Disk moves (``storage``): every disk copied or tried becomes a ``disk_moves`` entry of its host (guest, target,
source, dest, to_pool, outcome, bytes, seconds, rate_mib_s, synchronous, source_after, reason); a failed or aborted
one fails the host, a refused disk makes it ``partial``; the totals count them (``disks_moved``, ``disks_failed``,
``disks_refused``, ``disk_bytes``).

``markdown(report)`` renders the summary (``report_html.render(report)`` the HTML page); ``file_names(run_id)``
the three file names; ``to_json(report)``
the JSON text (sorted keys, so the same run always gives the same bytes).
"""

from __future__ import annotations

import datetime
import json
import re

from ansible_collections.hostmaint.libvirt.plugins.module_utils import roll
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    FAILED_OUTCOMES,
    MOVED_OUTCOMES,
    TIMELINE_PHASES,
)

# The version of the report's JSON shape; raised when a key changes meaning or goes away.
REPORT_VERSION = 1

# The files one run writes, in this order (html: module_utils.report_html).
FORMATS = ("json", "markdown", "html")

# A key that contains one of these (any case) is never copied into the report, at any depth.
SECRET_WORDS = ("password", "secret", "key", "token")

# Statuses, worst last.
STATUSES = ("ok", "partial", "failed")

# Step statuses that fail a host (Ansible's own words for a task that did not run through).
FAILED_STEP_STATUSES = ("failed", "unreachable")

# The engine results a host may carry, in the order a maintenance run makes them.
KINDS = ("evacuate", "restore")

# What a check-mode result's moves are called in the report (not an engine outcome).
PLANNED = "planned"

# The engine result keys the report keeps beside the plan and the outcomes.
RESULT_KEYS = ("run_id", "summary", "window_changes", "maintenance", "maintenance_cleared", "remaining", "empty",
               "late_arrivals", "home", "records_cleared")

# Longest file name stem a run id gives (well below the 255 bytes of common filesystems).
MAX_NAME = 120


# ---------------------------------------------------------------------------------------------
# Tolerant readers: the input comes from registered results and Jinja, so every value may be off.
# ---------------------------------------------------------------------------------------------

def _secret(key):
    text = str(key).lower()
    return any(word in text for word in SECRET_WORDS)


def scrub(value):
    """A copy of value without any dict entry whose key contains one of SECRET_WORDS, at any depth."""
    if isinstance(value, dict):
        return dict((key, scrub(item)) for key, item in value.items() if not _secret(key))
    if isinstance(value, (list, tuple)):
        return [scrub(item) for item in value]
    return value


def _dict(value):
    return value if isinstance(value, dict) else {}


def _list(value):
    return list(value) if isinstance(value, (list, tuple)) else []


def _text(value):
    """A one-line string, or None for nothing; lists (Ansible's msg may be one) are joined."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = "; ".join(str(item) for item in value if item is not None)
    text = " ".join(str(value).split())
    return text or None


def _truthy(value):
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return value != 0
    if value is None:
        return False
    return str(value).strip().lower() in ("true", "yes", "y", "on", "1", "ok")


def _number(value):
    """An int or float, or None: booleans and text that is not a number are None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return value
    try:
        number = float(str(value).strip())
    except ValueError:
        return None
    return int(number) if number.is_integer() else number


def parse_time(value):
    """An aware datetime from an ISO-8601 string ('Z' allowed; no zone means UTC), or None."""
    if isinstance(value, datetime.datetime):
        moment = value
    else:
        text = _text(value)
        if not text:
            return None
        if text[-1] in "Zz":
            text = text[:-1] + "+00:00"
        try:
            moment = datetime.datetime.fromisoformat(text)
        except ValueError:
            return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.timezone.utc)
    return moment


def seconds_between(started, ended):
    """Seconds from started to ended (ISO-8601 strings), rounded to ms; None when either is unknown or they run
    backwards."""
    first, last = parse_time(started), parse_time(ended)
    if first is None or last is None or last < first:
        return None
    return round((last - first).total_seconds(), 3)


def playbook_name(value):
    """'evacuate' for 'evacuate', 'evacuate.yml' or 'playbooks/evacuate.yml'; None for nothing."""
    text = _text(value)
    if not text:
        return None
    name = re.split(r"[\\/]", text)[-1]
    return re.sub(r"\.ya?ml$", "", name) or None


def file_names(run_id):
    """The JSON, Markdown and HTML file names of a run (in the order of FORMATS): its id with anything but letters, digits, '.', '_' and '-'
    replaced by '-' (so '/' can never leave the report folder), no leading '.' or '-'.

    Raises HostmaintError when nothing usable is left (an empty id, '..', '///').
    """
    text = "" if run_id is None else str(run_id).strip()
    stem = re.sub(r"[^A-Za-z0-9._-]+", "-", text)
    stem = re.sub(r"-{2,}", "-", stem).lstrip(".-")[:MAX_NAME].rstrip(".-")
    if not stem:
        raise HostmaintError("run id %r cannot name a report file: it has no letter or digit" % (text,),
                             run_id=text)
    return stem + ".json", stem + ".md", stem + ".html"


# ---------------------------------------------------------------------------------------------
# build(): normalise a run into the report.
# ---------------------------------------------------------------------------------------------

def _step(item):
    item = _dict(item)
    return dict(
        name=_text(item.get("name")) or "unnamed step",
        status=(_text(item.get("status")) or "unknown").lower(),
        started=_text(item.get("started")),
        ended=_text(item.get("ended")),
        duration_s=seconds_between(item.get("started"), item.get("ended")),
        msg=_text(item.get("msg")),
    )


def _gate(host, item):
    item = _dict(item)
    return dict(
        check=_text(item.get("check")) or "unnamed check",
        host=_text(item.get("host")) or host,
        ok=_truthy(item.get("ok")),
        msg=_text(item.get("msg")),
    )


def _reason(problems):
    """The distinct messages of a list of Problem dicts, in order, as one sentence."""
    seen = []
    for problem in _list(problems):
        message = _text(_dict(problem).get("message")) if isinstance(problem, dict) else _text(problem)
        if message and message not in seen:
            seen.append(message)
    return "; ".join(seen) or None


def _codes(problems):
    return sorted(set(_text(_dict(p).get("code")) for p in _list(problems) if _text(_dict(p).get("code"))))


def _timeline(value):
    value = _dict(value)
    timeline = dict((phase, _number(value.get(phase))) for phase in TIMELINE_PHASES)
    for phase, at in value.items():  # phases a newer engine adds are kept
        if phase not in timeline:
            timeline[str(phase)] = _number(at)
    return timeline


def _move(host, kind, item):
    item = _dict(item)
    outcome = (_text(item.get("outcome")) or "unknown").lower()
    return dict(
        host=host,
        kind=kind,
        guest=_text(item.get("guest")) or "unnamed guest",
        action=_text(item.get("action")),
        source=_text(item.get("source")),
        destination=_text(item.get("destination")),
        wave=_number(item.get("wave")),
        outcome=outcome,
        moved=outcome in MOVED_OUTCOMES,
        downtime_ms=_number(item.get("downtime_ms")),
        duration_s=_number(item.get("duration_s")),
        bytes_transferred=_number(item.get("bytes_transferred")),
        iterations=_number(item.get("iterations")),
        reason=_text(item.get("reason")),
        runs_on=[_text(name) for name in _list(item.get("runs_on")) if _text(name)],
        state_after=_text(item.get("state_after")),
        ladder_steps=scrub(_list(item.get("ladder_steps"))),
        timeline=_timeline(item.get("timeline")),
    )


def _planned(host, kind, item):
    item = _dict(item)
    return dict(
        host=host, kind=kind, guest=_text(item.get("guest")) or "unnamed guest", action=_text(item.get("action")),
        source=_text(item.get("source")), destination=_text(item.get("destination")), wave=_number(item.get("wave")),
        outcome=PLANNED, moved=False, downtime_ms=None, duration_s=None, bytes_transferred=None, iterations=None,
        reason=None, runs_on=[], state_after=None, ladder_steps=[], timeline=_timeline(None),
    )


def _blocked(host, kind, item, where):
    item = _dict(item)
    reasons = _list(item.get("reasons"))
    return dict(host=host, kind=kind, guest=_text(item.get("guest")) or "unnamed guest", plan_list=where,
                codes=_codes(reasons), reason=_reason(reasons) or "no reason given",
                policy=_text(item.get("policy")), state=_text(item.get("state")))


def _skipped(host, kind, item):
    item = _dict(item)
    return dict(host=host, kind=kind, guest=_text(item.get("guest")) or "unnamed guest",
                codes=[_text(item.get("code"))] if _text(item.get("code")) else [],
                reason=_text(item.get("reason")) or _reason(item.get("problems")) or "no reason given")


def _engine_result(host, kind, result, check_mode):
    """One engine result as (section, moves, blocked, skipped); section None when there is no result."""
    if not isinstance(result, dict) or not result:
        return None, [], [], []
    if _truthy(result.get("skipped")):
        return dict(status="skipped", msg=_text(result.get("skip_reason") or result.get("msg"))), [], [], []
    failed = _truthy(result.get("failed")) or _truthy(result.get("unreachable"))
    plan = scrub(result.get("plan")) if isinstance(result.get("plan"), dict) else None
    outcomes = result.get("outcomes")
    planned_only = plan is not None and outcomes is None and not failed
    section = dict(status="failed" if failed else "ok", changed=_truthy(result.get("changed")),
                   msg=_text(result.get("msg")) if failed else None, check_mode=bool(check_mode or planned_only),
                   plan=plan)
    for key in RESULT_KEYS:
        if key in result:
            section[key] = scrub(result[key])
    moves = [_move(host, kind, item) for item in _list(outcomes) if isinstance(item, dict)]
    if planned_only:
        moves = [_planned(host, kind, item) for item in _list(_dict(plan).get("moves")) if isinstance(item, dict)]
    blocked = [_blocked(host, kind, item, "blocked") for item in _list(_dict(plan).get("blocked"))]
    blocked += [_blocked(host, kind, item, "not_home") for item in _list(_dict(plan).get("not_home"))]
    skipped = [_skipped(host, kind, item) for item in _list(_dict(plan).get("skipped"))]
    return section, moves, blocked, skipped


def _maintenance(sections):
    """Whether the host is left in maintenance: True, False, or None when the results do not say."""
    state = None
    for kind in KINDS:
        section = sections.get(kind)
        if not section or section["status"] == "skipped":
            continue
        if kind == "evacuate" and "maintenance" in section:
            state = bool(section["maintenance"])
        elif kind == "restore":
            if "maintenance_cleared" in section and not section["check_mode"]:
                state = False  # restore clears the mark whether or not every guest came home
    return state


def _retry(playbook, kind, host):
    """What to run again, limited to host, for what went wrong in ``kind`` (evacuate, restore, or None for a
    step or a gate of the run): restore's problems by restore.yml, an evacuation's by the run's own playbook
    (which evacuates again), anything else by the run's playbook."""
    if kind == "restore":
        name = "restore"
    elif kind == "evacuate" and playbook in (None, "restore"):
        name = "evacuate"
    else:
        name = playbook
    if not name:
        return "the playbook with -l %s" % host
    return "playbooks/%s.yml -l %s" % (name, host)


def _where(move):
    if move["runs_on"]:
        return "it runs on %s" % ", ".join(move["runs_on"])
    return "check where it runs with hostmaint.libvirt.guest_info"


def _gate_and_step_sentences(name, playbook, gates, steps, failures, sentences):
    """Failures and next steps for the gates a host did not pass and its steps that failed."""
    for gate in gates:
        if not gate["ok"]:
            failures.append(dict(host=name, what="gate", name=gate["check"], reason=gate["msg"]))
            sentences.append("%s did not pass the %s check%s: fix that, then run %s again." % (
                gate["host"], gate["check"], " (%s)" % gate["msg"] if gate["msg"] else "",
                _retry(playbook, None, gate["host"])))
    for step in steps:
        if step["status"] in FAILED_STEP_STATUSES:
            failures.append(dict(host=name, what="step", name=step["name"], reason=step["msg"]))
            sentences.append("%s: step '%s' %s%s: fix that, then run %s again." % (
                name, step["name"], step["status"], " (%s)" % step["msg"] if step["msg"] else "",
                _retry(playbook, None, name)))


def _move_sentences(name, playbook, moves, blocked, failures, sentences):
    """Failures and next steps for the guests of host ``name`` that did not move as planned.

    Returns the guests given a sentence, per kind (evacuate, restore).
    """
    explained = {}
    for move in moves:
        retry = _retry(playbook, move["kind"], name)
        reason = move["reason"]
        if move["outcome"] in FAILED_OUTCOMES:
            failures.append(dict(host=name, what="move", name=move["guest"], reason=reason, outcome=move["outcome"],
                                 source=move["source"], destination=move["destination"]))
            if move["kind"] == "restore":
                text = "%s did not come home to %s (%s): %s; fix the cause, then run %s again."
                sentences.append(text % (move["guest"], name, reason or move["outcome"], _where(move), retry))
            else:
                text = "%s did not move (%s): %s; fix the cause, then run %s again."
                sentences.append(text % (move["guest"], reason or move["outcome"], _where(move), retry))
        elif move["outcome"] == "blocked":
            text = "%s could not be placed once its destination left the run (%s): make room, then run %s again."
            sentences.append(text % (move["guest"], reason or "no reason given", retry))
        elif move["outcome"] == "not_run":
            text = "%s was not moved (%s): once the failures above are fixed, run %s again."
            sentences.append(text % (move["guest"], reason or "the run stopped before its turn", retry))
        else:
            continue
        explained.setdefault(move["kind"], set()).add(move["guest"])
    for entry in blocked:
        retry = _retry(playbook, entry["kind"], name)
        if entry["plan_list"] == "not_home":
            text = "%s cannot come home to %s (%s): it keeps running where it is; make room on %s, then run %s again."
            sentences.append(text % (entry["guest"], name, entry["reason"], name, retry))
        else:
            text = ("%s cannot leave %s (%s): make room on the other hosts or set its policy to shutdown or skip, "
                    "then run %s again.")
            sentences.append(text % (entry["guest"], name, entry["reason"], retry))
        explained.setdefault(entry["kind"], set()).add(entry["guest"])
    return explained


DISK_MOVE_KEYS = ("guest", "target", "source", "dest", "to_pool", "outcome", "bytes", "job_bytes", "seconds", "rate_mib_s",
                  "synchronous", "source_after", "reason")


def _disk_moves(name, result):
    """(disk moves, refused disks, the module's message when it failed) of a disk_move result."""
    result = _dict(result)
    moves = []
    for item in _list(result.get("moves")):
        if isinstance(item, dict):
            move = dict((key, item.get(key)) for key in DISK_MOVE_KEYS)
            move["host"] = name
            moves.append(move)
    refused = []
    for plan in _list(result.get("plans")):
        for item in _list(_dict(plan).get("refused")):
            if isinstance(item, dict) and item.get("code") != "already_there":
                refused.append(dict(host=name, guest=_dict(plan).get("guest"), target=item.get("target"),
                                    code=item.get("code"), reason=_text(item.get("reason"))))
    failed = _text(result.get("msg")) if _truthy(result.get("failed")) and not moves else None
    return moves, refused, failed


def _host_report(name, data, playbook, check_mode):
    steps = [_step(item) for item in _list(data.get("steps")) if isinstance(item, dict)]
    gates = [_gate(name, item) for item in _list(data.get("gates")) if isinstance(item, dict)]
    sections, moves, blocked, skipped = {}, [], [], []
    for kind in KINDS:
        section, kind_moves, kind_blocked, kind_skipped = _engine_result(name, kind, data.get(kind), check_mode)
        if section is not None:
            sections[kind] = section
            moves += kind_moves
            blocked += kind_blocked
            skipped += kind_skipped
    checking = bool(check_mode) or any(s.get("check_mode") for s in sections.values())
    maintenance = _maintenance(sections)
    disk_moves, disks_refused, disk_failure = _disk_moves(name, data.get("storage"))

    failures, sentences = [], []
    _gate_and_step_sentences(name, playbook, gates, steps, failures, sentences)
    for move in disk_moves:
        if move["outcome"] in ("failed", "aborted"):
            failures.append(dict(host=name, what="disk", name="%s %s" % (move["guest"], move["target"]),
                                 outcome=move["outcome"], reason=move["reason"]))
    if disk_failure:
        failures.append(dict(host=name, what="disk_move", name="disk_move", reason=disk_failure))
    for entry in disks_refused:
        sentences.append("%s stays where it is: %s." % ("%s of %s" % (entry["target"], entry["guest"]),
                                                        entry["reason"]))
    explained = _move_sentences(name, playbook, moves, blocked, failures, sentences)
    evacuation = sections.get("evacuate") or {}
    left = []
    if not evacuation.get("check_mode"):
        known = set(g for names in explained.values() for g in names) | set(entry["guest"] for entry in skipped)
        left = [_text(g) for g in _list(evacuation.get("remaining")) if _text(g) and _text(g) not in known]
    if left:
        explained.setdefault("evacuate", set()).update(left)
        sentences.append("%s still %s on %s after the evacuation: look at %s, then run %s again." % (
            ", ".join(left), "runs" if len(left) == 1 else "run", name, "it" if len(left) == 1 else "them",
            _retry(playbook, "evacuate", name)))
    for kind in KINDS:
        section = sections.get(kind)
        if section and section["status"] == "failed":
            failures.append(dict(host=name, what=kind, name=kind, reason=section["msg"]))
            if not explained.get(kind):  # no guest-level sentence says what to do: say it for the module
                sentences.append("%s failed on %s (%s): fix the cause, then run %s again." % (
                    kind, name, section["msg"] or "no message", _retry(playbook, kind, name)))
    if maintenance:
        sentences.append("%s is still in maintenance: run playbooks/restore.yml -l %s once it is healthy."
                         % (name, name))

    if failures:
        status = "failed"
    elif blocked or left or disks_refused or any(m["outcome"] in ("blocked", "not_run") for m in moves):
        status = "partial"
    else:
        status = "ok"
    host = dict(status=status, maintenance=maintenance, check_mode=checking, steps=steps, gates=gates,
                moves=moves, blocked=blocked, skipped=skipped, remaining=left, disk_moves=disk_moves,
                disks_refused=disks_refused)
    host.update(sections)
    return host, failures, sentences


def _extreme(moves, key):
    best = None
    for move in moves:
        if move[key] is not None and (best is None or move[key] > best[key]):
            best = move
    if best is None:
        return None
    return dict((field, best[field]) for field in ("guest", "host", "kind", "source", "destination", key))


def _roll(value, duration_s):
    """The roll's part of a rolling upgrade's report, from ``run['roll']`` ({plan: roll_plan's result, state: the
    roll's final state}): its options, the forecast beside the measured time, the hosts' phases, the hosts left
    empty, and its turns. None for any other run."""
    value = _dict(value)
    plan, state = _dict(value.get("plan")), _dict(value.get("state"))
    if not plan and not state:
        return None
    forecast = _dict(plan.get("forecast"))
    empty = []
    if state.get("order") and state.get("guests") is not None and state.get("phase"):
        try:
            empty = roll.empty_at_end(state)
        except (KeyError, TypeError):
            empty = []
    return dict(options=_dict(plan.get("options") or state.get("options")), order=_list(plan.get("order")),
                forecast_s=_number(forecast.get("makespan_s")),
                forecast_range_s=[_number(v) for v in _list(forecast.get("range_s"))][:2],
                forecast_calibration=_text(forecast.get("calibration")), measured_s=duration_s,
                phases=dict((str(h), _text(p)) for h, p in _dict(state.get("phase")).items()),
                empty_at_end=empty, stopped=_text(state.get("stopped")),
                turns=[dict(host=_text(t.get("host")), what=_text(t.get("what")), at=_text(t.get("at")),
                            note=_text(t.get("note"))) for t in _list(state.get("history")) if isinstance(t, dict)])


def build(run):
    """The report of one run (see the module docstring for ``run``'s shape and the rules).

    Raises HostmaintError when ``run`` is not a dict or has no run_id.
    """
    if not isinstance(run, dict):
        raise HostmaintError("cannot build the run report: the run must be a dict, got %s" % type(run).__name__)
    run_id = _text(run.get("run_id"))
    if not run_id:
        raise HostmaintError("cannot build the run report: the run has no run_id")
    file_names(run_id)  # a run id that cannot name a file fails here, before anything is written
    playbook = playbook_name(run.get("playbook"))
    check_mode = _truthy(run.get("check_mode"))
    hosts, failures, next_steps = {}, [], []
    for name in sorted(_dict(run.get("hosts")), key=str):
        data = scrub(_dict(run["hosts"][name]))
        host, host_failures, host_next = _host_report(str(name), data, playbook, check_mode)
        hosts[str(name)] = host
        failures += host_failures
        next_steps += [sentence for sentence in host_next if sentence not in next_steps]
    checking = check_mode or any(host["check_mode"] for host in hosts.values())
    if checking:
        next_steps.append("This was a check-mode run and changed nothing: run the playbook without --check to "
                          "carry out the plan.")
    moves = [move for host in hosts.values() for move in host["moves"]]
    done = [move for move in moves if move["outcome"] != PLANNED]
    statuses = [host["status"] for host in hosts.values()] or ["ok"]
    totals = dict(
        hosts=len(hosts),
        moves=len(done),
        moved=len([m for m in done if m["moved"]]),
        failed=len([m for m in done if m["outcome"] in FAILED_OUTCOMES]),
        blocked=len([m for m in done if m["outcome"] == "blocked"]) + sum(len(h["blocked"]) for h in hosts.values()),
        not_run=len([m for m in done if m["outcome"] == "not_run"]),
        skipped=sum(len(h["skipped"]) for h in hosts.values()),
        planned=len(moves) - len(done),
        bytes_transferred=sum(m["bytes_transferred"] or 0 for m in done),
        worst_pause=_extreme(done, "downtime_ms"),
        longest_move=_extreme([m for m in done if m["moved"]], "duration_s"),
        steps_failed=len([f for f in failures if f["what"] == "step"]),
        gates_failed=len([f for f in failures if f["what"] == "gate"]),
        disks_moved=len([d for h in hosts.values() for d in h["disk_moves"] if d["outcome"] == "moved"]),
        disks_failed=len([d for h in hosts.values() for d in h["disk_moves"] if d["outcome"] in ("failed", "aborted")]),
        disks_refused=sum(len(h["disks_refused"]) for h in hosts.values()),
        disk_bytes=sum(int(d["bytes"] or 0) for h in hosts.values() for d in h["disk_moves"] if d["outcome"] == "moved"),
    )
    duration_s = seconds_between(run.get("started"), run.get("ended"))
    rolled = _roll(run.get("roll"), duration_s)
    if rolled and rolled["empty_at_end"]:
        next_steps.append("%s end%s the roll with no guest (guests stayed on the upgraded hosts): %s ready to take "
                          "guests again" % (", ".join(rolled["empty_at_end"]), "s" if len(rolled["empty_at_end"]) == 1
                                            else "", "it is" if len(rolled["empty_at_end"]) == 1 else "they are"))
    return dict(
        report_version=REPORT_VERSION,
        run_id=run_id,
        playbook=playbook,
        started=_text(run.get("started")),
        ended=_text(run.get("ended")),
        duration_s=duration_s,
        roll=rolled,
        check_mode=checking,
        status=max(statuses, key=STATUSES.index),
        hosts=hosts,
        totals=totals,
        failures=failures,
        next_steps=next_steps,
    )


def summary(report):
    """The report's totals with its status (what the run_report module returns)."""
    data = dict(report["totals"])
    data["status"] = report["status"]
    return data


def to_json(report):
    """The report as JSON text: sorted keys, two-space indent, a final newline."""
    return json.dumps(report, indent=2, sort_keys=True, ensure_ascii=False, default=str) + "\n"


# ---------------------------------------------------------------------------------------------
# markdown(): the short human summary.
# ---------------------------------------------------------------------------------------------

def _cell(value):
    if value is None or value == "":
        return "-"
    return " ".join(str(value).split()).replace("|", "\\|")


def _line(value):
    return " ".join(str(value).split())


def _seconds(value):
    return "-" if value is None else "%.1f" % value


def _bytes(count):
    size = float(count or 0)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (size, unit)
        size /= 1024.0
    return "%.1f TiB" % size  # not reached


def _route(entry):
    return "%s -> %s" % (entry.get("source") or "?", entry.get("destination") or "?")


def markdown(report):
    """A concise Markdown summary of a report built by ``build``."""
    totals = report["totals"]
    title = "# %s run %s: %s" % (report.get("playbook") or "maintenance", report["run_id"], report["status"])
    lines = [_line(title + (" (check mode, nothing changed)" if report.get("check_mode") else "")), ""]
    hosts = sorted(report["hosts"])
    lines.append("- Hosts: %s" % (", ".join(hosts) if hosts else "none"))
    if report.get("started") or report.get("ended"):
        took = " (%s s)" % _seconds(report["duration_s"]) if report.get("duration_s") is not None else ""
        started, ended = report.get("started") or "?", report.get("ended") or "?"
        lines.append(_line("- Started %s, ended %s%s" % (started, ended, took)))
    lines.append("- Guests: %d moved, %d failed, %d blocked, %d not run; %s transferred" % (
        totals["moved"], totals["failed"], totals["blocked"], totals["not_run"], _bytes(totals["bytes_transferred"])))
    if totals["planned"]:
        lines.append("- Planned moves (check mode): %d" % totals["planned"])
    rolled = report.get("roll")
    if rolled:
        options = rolled.get("options") or {}
        text = "- Roll: %s host(s) of a cluster at once, guests %s" % (
            options.get("parallel_hosts", 1), "stay where they land" if options.get("return_mode") == "stay"
            else "return home")
        if rolled.get("forecast_s") is not None:
            low, high = (list(rolled.get("forecast_range_s") or []) + [None, None])[:2]
            text += "; forecast %s s (%s to %s s, calibrated on %s)" % (
                _seconds(rolled["forecast_s"]), _seconds(low), _seconds(high), rolled.get("forecast_calibration") or "?")
        if rolled.get("measured_s") is not None:
            text += ", took %s s" % _seconds(rolled["measured_s"])
        if rolled.get("empty_at_end"):
            text += "; empty at the end: %s" % ", ".join(rolled["empty_at_end"])
        lines.append(_line(text))
    worst, longest = totals["worst_pause"], totals["longest_move"]
    if worst:
        worst = "%s, %s ms (%s)" % (worst["guest"], worst["downtime_ms"], _route(worst))
    if longest:
        longest = "%s, %s s (%s)" % (longest["guest"], _seconds(longest["duration_s"]), _route(longest))
    lines.append(_line("- Worst pause: %s" % (worst or "none")))
    lines.append(_line("- Longest move: %s" % (longest or "none")))
    moves = [move for host in hosts for move in report["hosts"][host]["moves"]]
    lines += ["", "## Moves", ""]
    if moves:
        lines += ["| guest | from | to | outcome | pause ms | took s |", "| --- | --- | --- | --- | --- | --- |"]
        for move in moves:
            outcome = move["outcome"]
            if outcome == PLANNED and move.get("action") and move["action"] != "migrate":
                outcome = "%s (%s)" % (PLANNED, move["action"])
            lines.append("| %s | %s | %s | %s | %s | %s |" % (
                _cell(move["guest"]), _cell(move["source"]), _cell(move["destination"]), _cell(outcome),
                _cell(move["downtime_ms"]), _seconds(move["duration_s"])))
    else:
        lines.append("No guest moved.")
    disks = [move for host in hosts for move in report["hosts"][host].get("disk_moves", [])]
    if disks:
        lines += ["", "## Disk moves", "", "- %d moved, %d failed, %d refused; %s copied" % (
            totals.get("disks_moved", 0), totals.get("disks_failed", 0), totals.get("disks_refused", 0),
            _bytes(totals.get("disk_bytes"))), ""]
        lines += ["| host | guest | disk | to pool | outcome | copied | took s | MiB/s | synchronous | source |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        for move in disks:
            lines.append("| %s | %s | %s | %s | %s | %s | %s | %s | %s | %s |" % (
                _cell(move["host"]), _cell(move["guest"]), _cell(move["target"]), _cell(move["to_pool"]),
                _cell(move["outcome"]), _bytes(move["bytes"]) if move["bytes"] else "-", _seconds(move["seconds"]),
                _cell(move["rate_mib_s"]), "yes" if move["synchronous"] else "no", _cell(move["source_after"])))
    if report["failures"]:
        lines += ["", "## Failures", ""]
        for failure in report["failures"]:
            reason = failure.get("reason") or "no reason given"
            if failure["what"] == "move":
                text = "%s (%s): %s: %s" % (failure["name"], _route(failure), failure["outcome"], reason)
            elif failure["what"] == "step":
                text = "%s, step '%s': %s" % (failure["host"], failure["name"], reason)
            elif failure["what"] == "gate":
                text = "%s, gate %s: %s" % (failure["host"], failure["name"], reason)
            else:
                text = "%s on %s: %s" % (failure["what"], failure["host"], reason)
            lines.append(_line("- " + text))
    not_moved = [entry for host in hosts for entry in report["hosts"][host]["blocked"]]
    not_moved += [entry for host in hosts for entry in report["hosts"][host]["skipped"]]
    if not_moved:
        lines += ["", "## Not moved", ""]
        for entry in not_moved:
            what = entry.get("plan_list") or "skipped"
            codes = " (%s)" % ", ".join(entry["codes"]) if entry["codes"] else ""
            lines.append(_line("- %s on %s: %s%s: %s" % (entry["guest"], entry["host"], what, codes, entry["reason"])))
    lines += ["", "## Next steps", ""]
    if report["next_steps"]:
        lines += [_line("%d. %s" % (number, text)) for number, text in enumerate(report["next_steps"], 1)]
    else:
        lines.append("Nothing left to do.")
    return "\n".join(lines) + "\n"
