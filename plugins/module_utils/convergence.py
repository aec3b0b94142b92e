# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The convergence ladder: what to do next with one running live migration.

Pure: the executor polls libvirt and feeds the numbers in; the ladder answers with one LadderAction.
The executor's loop, per guest::

    options = convergence.start_flags(policy, paused=guest.state == "paused")
    # start the migration with options (flags and parameters), set options.downtime_ms
    state = convergence.new_state(policy, guest.name, memory_mib, options)
    while the job runs (every policy.poll_interval_s):
        convergence.observe(state, JobSample.from_job_stats(dom.jobStats(), elapsed_s=clock))
        action = convergence.next_action(policy, state)
        set_downtime -> virDomainMigrateSetMaxDowntime(action.value)
        auto_converge -> nothing to call: QEMU's throttle, requested at start, is now what is relied on
        postcopy -> virDomainMigrateStartPostCopy
        abort -> virDomainAbortJob (the guest keeps running on the source)
        convergence.applied(state, action)   # once the call succeeded; state.steps is the report

The order of the rungs: raise the downtime limit step by step; then rely on auto-converge for a while
(libvirt can only switch it on at start, VIR_MIGRATE_AUTO_CONVERGE, and QEMU throttles a guest only
once it sees the guest not converging, so requesting it up front costs a converging guest nothing);
then post-copy if allowed (VIR_MIGRATE_POSTCOPY at start makes the later switch possible); then
wait for the timeout and abort. Once post-copy runs the ladder never aborts: the guest already runs
on the destination and aborting would lose it.
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import (
    GIB,
    MIB,
    DecisionError,
    LadderAction,
    LadderPolicy,
    LadderState,
    StartOptions,
)

# Pass starts kept per migration (enough to compare a few passes back).
_PASS_HISTORY = 16


def timeout_for(memory_mib, policy=None, disk_bytes=0):
    """Seconds one migration may take: max(floor, timeout_s_per_gib * GiB to copy), the GiB of its memory and of
    the disks a storage copy copies (``disk_bytes``)."""
    policy = policy or LadderPolicy()
    if memory_mib is None or int(memory_mib) < 0 or int(disk_bytes or 0) < 0:
        raise DecisionError("invalid migration size: memory %s MiB, disks %s bytes" % (memory_mib, disk_bytes))
    gib = int(memory_mib) * MIB / float(GIB) + int(disk_bytes or 0) / float(GIB)
    return max(float(policy.timeout_floor_s), float(policy.timeout_s_per_gib) * gib)


def start_flags(policy=None, paused=False):
    """The optional features to request when the migration starts.

    A paused guest dirties no memory and libvirt refuses post-copy for it, so it gets neither
    auto-converge nor post-copy.
    """
    policy = (policy or LadderPolicy()).validate()
    auto_converge = bool(policy.auto_converge) and not paused
    return StartOptions(
        downtime_ms=int(policy.downtime_steps_ms[0]),
        auto_converge=auto_converge,
        auto_converge_initial=int(policy.auto_converge_initial) if auto_converge else None,
        auto_converge_increment=int(policy.auto_converge_increment) if auto_converge else None,
        postcopy=bool(policy.postcopy) and not paused,
    )


def new_state(policy, guest, memory_mib, options=None, paused=False, disk_bytes=0):
    """The ladder's memory for one migration that starts now with ``options`` (start_flags); ``disk_bytes``: what
    the disks of a storage copy hold, which its time limit counts beside the memory."""
    policy = (policy or LadderPolicy()).validate()
    options = options or start_flags(policy, paused=paused)
    return LadderState(
        guest=guest,
        memory_mib=int(memory_mib),
        timeout_s=timeout_for(memory_mib, policy, disk_bytes),
        downtime_ms=int(options.downtime_ms),
        disk_bytes=int(disk_bytes or 0),
        step_index=0,
        paused=bool(paused),
        auto_converge_enabled=bool(options.auto_converge),
        postcopy_enabled=bool(options.postcopy),
    )


def observe(state, sample):
    """Record one poll of the job (updates ``state`` in place and returns it)."""
    if sample.elapsed_s < state.elapsed_s:
        raise DecisionError("job sample for %s goes back in time: %.1f s after %.1f s"
                            % (state.guest, sample.elapsed_s, state.elapsed_s))
    state.elapsed_s = sample.elapsed_s
    processed = max(sample.data_processed, sample.memory_processed)
    if processed > state.best_processed:
        state.best_processed = processed
        state.last_progress_s = sample.elapsed_s
    iteration = sample.memory_iteration
    if iteration and iteration not in state.pass_starts:
        state.pass_starts[iteration] = sample.memory_remaining
        for old in sorted(state.pass_starts)[:-_PASS_HISTORY]:
            del state.pass_starts[old]
    state.last = sample
    return state


def applied(state, action):
    """Record that the executor carried out ``action`` (updates ``state`` in place, returns it)."""
    if action.kind == "wait":
        return state
    now = state.elapsed_s
    iteration = state.last.memory_iteration if state.last is not None else 0
    if action.kind == "set_downtime":
        state.downtime_ms = int(action.value)
        state.step_index += 1
    elif action.kind == "auto_converge":
        state.auto_converge_marked = True
    elif action.kind == "postcopy":
        state.postcopy_started = True
    state.last_change_s = now
    state.last_change_iteration = iteration
    state.steps.append(LadderAction(kind=action.kind, value=action.value,
                                    reason="at %.1f s: %s" % (now, action.reason), at_s=round(now, 3)))
    return state


def _mib(value):
    return "%.0f MiB" % (value / float(MIB))


def _pass_start_at_or_before(state, iteration):
    known = [key for key in state.pass_starts if key <= iteration]
    if not known:
        return None
    return state.pass_starts[max(known)]


def converging(policy, state):
    """(True, why) while the migration is expected to finish on its own; (False, why) when stalled."""
    sample = state.last
    if sample is None:
        return True, "waiting for the first job statistics"
    if state.paused:
        return True, "the guest is paused and dirties no memory"
    if sample.memory_iteration <= 1:
        return True, "first pass over memory, %s remaining" % _mib(sample.memory_remaining)
    if sample.memory_bps > 0:
        pause_ms = sample.memory_remaining * 1000.0 / sample.memory_bps
        if pause_ms <= state.downtime_ms:
            return True, "%s remaining fit in the %d ms downtime at %s/s" % (
                _mib(sample.memory_remaining), state.downtime_ms, _mib(sample.memory_bps))
    # pass 1 is the bulk copy: count the passes after it, or after the last step, whichever is later
    passes = sample.memory_iteration - max(state.last_change_iteration, 1)
    if passes < int(policy.stall_passes):
        return True, "pass %d: giving the current step %d passes" % (sample.memory_iteration, policy.stall_passes)
    recent = _pass_start_at_or_before(state, sample.memory_iteration)
    earlier = _pass_start_at_or_before(state, sample.memory_iteration - int(policy.stall_passes))
    if earlier is None and state.pass_starts:
        earlier = state.pass_starts[min(state.pass_starts)]
    if recent is not None and earlier is not None and recent < earlier * (1.0 - float(policy.min_shrink)):
        return True, "memory left per pass shrinks (%s from %s)" % (_mib(recent), _mib(earlier))
    rate = ""
    if sample.dirty_rate_bps:
        rate = ", guest dirties %s/s" % _mib(sample.dirty_rate_bps)
    return False, "not converging after %d passes at %d ms: %s remaining at %s/s%s" % (
        passes, state.downtime_ms, _mib(sample.memory_remaining), _mib(sample.memory_bps), rate)


def next_action(policy, state):
    """The one thing to do now for this migration (pure: ``state`` is not changed)."""
    policy = policy or LadderPolicy()
    elapsed = state.elapsed_s
    if state.postcopy_started:
        return LadderAction("wait", reason="post-copy is running; it completes on its own and aborting would "
                                           "lose the guest")
    if elapsed >= state.timeout_s:
        disks = " and %s of disks" % _mib(state.disk_bytes) if state.disk_bytes else ""
        return LadderAction("abort", reason="migration of %s took %.0f s, over its %.0f s limit for %d MiB%s" % (
            state.guest, elapsed, state.timeout_s, state.memory_mib, disks))
    if elapsed - state.last_progress_s >= float(policy.no_progress_timeout_s):
        return LadderAction("abort", reason="no data transferred for %s for %.0f s" % (
            state.guest, elapsed - state.last_progress_s))
    ok, why = converging(policy, state)
    if ok:
        return LadderAction("wait", reason=why)
    since = elapsed - state.last_change_s
    if since < float(policy.step_interval_s):
        return LadderAction("wait", reason="%s; next step in %.1f s" % (why, float(policy.step_interval_s) - since))
    steps = list(policy.downtime_steps_ms)
    if state.step_index + 1 < len(steps):
        return LadderAction("set_downtime", value=int(steps[state.step_index + 1]), reason=why)
    if state.auto_converge_enabled and not state.auto_converge_marked:
        return LadderAction("auto_converge", value=state.last.auto_converge_throttle,
                            reason="%s; downtime steps used up, relying on auto-converge" % why)
    if state.auto_converge_marked and since < float(policy.auto_converge_window_s):
        return LadderAction("wait", reason="%s; auto-converge throttles the guest at %d%%" % (
            why, state.last.auto_converge_throttle))
    if state.postcopy_enabled and policy.postcopy:
        return LadderAction("postcopy", reason="%s; switching to post-copy" % why)
    return LadderAction("wait", reason="%s; ladder used up, abort in %.0f s" % (why, state.timeout_s - elapsed))


def rung(policy, state):
    """The ladder's rung a migration is on, for progress lines: 'downtime 100 ms (2/5)', 'auto-converge 30%',
    'post-copy'."""
    if state.postcopy_started:
        return "post-copy"
    if state.auto_converge_marked:
        throttle = state.last.auto_converge_throttle if state.last is not None else 0
        return "auto-converge %d%%" % throttle
    steps = len((policy or LadderPolicy()).downtime_steps_ms)
    return "downtime %d ms (%d/%d)" % (state.downtime_ms, min(state.step_index + 1, steps), steps)
