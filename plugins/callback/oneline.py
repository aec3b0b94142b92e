# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
name: oneline
type: stdout
short_description: One line per host and task, without a false "An exception occurred" on every failure
version_added: 0.4.0
description:
  - The output of ansible-core's C(oneline) callback (C(ansible -o)) - C(host | SUCCESS => {...}),
    C(host | CHANGED => {...}), C(host | FAILED! => {...}), C(host | UNREACHABLE!) with the message, C(host | SKIPPED) - one
    line each, so that a script or a terminal reads one result per line.
  - Why it exists. Since ansible-core 2.19 the controller gives every failed result an C(exception) entry (an
    error summary made from C(msg), with a traceback only when C(DISPLAY_TRACEBACK) asks for one), and core's
    C(oneline), which is deprecated and goes in 2.23, takes that entry for a module that crashed - it prints
    C(An exception occurred during task execution ... The error was - (traceback unavailable)) before every
    failed task, C(ansible.builtin.fail) too, and a clean one-sentence refusal of this collection looks like a crash.
  - This one prints that line only when the result carries a real traceback.
  - Use it with C(ANSIBLE_STDOUT_CALLBACK=hostmaint.libvirt.oneline) (and C(ANSIBLE_LOAD_CALLBACK_PLUGINS=1) for
    C(ansible) ad hoc).
author:
  - hostmaint.libvirt maintainers (@hostmaint)
"""

from ansible import constants as C
from ansible.plugins.callback import CallbackBase


def traceback_of(exception):
    """The traceback text a result's ``exception`` entry carries, or None: a string is one (what a module returns when
    tracebacks are on); an error summary has one when its event, or an event of its chain, has a formatted traceback."""
    if isinstance(exception, str):
        return exception.strip() or None
    event = getattr(exception, "event", None)
    while event is not None:
        found = getattr(event, "formatted_traceback", None)
        if found:
            return found
        chain = getattr(event, "chain", None)
        event = getattr(chain, "event", None)
    return None


def exception_of(result):
    """A failed result's ``exception`` entry as the controller made it: the error summary itself (the task result's
    own data), not the text callbacks are given in ``result.result``, where a summary without a traceback has become
    the words "(traceback unavailable)"."""
    raw = getattr(result, "_return_data", None)
    if isinstance(raw, dict) and "exception" in raw:
        return raw["exception"]
    return result.result.get("exception")


class CallbackModule(CallbackBase):
    """One line per host and task (see DOCUMENTATION)."""

    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "hostmaint.libvirt.oneline"

    def _line(self, result, state):
        return "%s | %s => %s" % (result.host.get_name(), state,
                                  self._dump_results(result.result, indent=0).replace("\n", ""))

    def v2_runner_on_failed(self, result, ignore_errors=False):
        found = traceback_of(exception_of(result))
        if found:
            if self._display.verbosity < 3:
                self._display.display("An exception occurred during task execution. To see the full traceback, use "
                                      "-vvv. The error was: %s" % found.strip().split("\n")[-1], color=C.COLOR_ERROR)
            else:
                self._display.display("An exception occurred during task execution. The full traceback is:\n"
                                      + found, color=C.COLOR_ERROR)
        self._display.display(self._line(result, "FAILED!"), color=C.COLOR_ERROR)

    def v2_runner_on_ok(self, result):
        changed = result.result.get("changed", False)
        self._display.display(self._line(result, "CHANGED" if changed else "SUCCESS"),
                              color=C.COLOR_CHANGED if changed else C.COLOR_OK)

    def v2_runner_on_unreachable(self, result):
        self._display.display("%s | UNREACHABLE!: %s" % (result.host.get_name(), result.result.get("msg", "")),
                              color=C.COLOR_UNREACHABLE)

    def v2_runner_on_skipped(self, result):
        self._display.display("%s | SKIPPED" % result.host.get_name(), color=C.COLOR_SKIP)
