# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""hostmaint.libvirt.oneline: one line per result, and "An exception occurred" only for a real traceback (ansible-core
2.19 gives every failed result an error summary, which core's oneline took for a crash)."""

from __future__ import annotations

import os
import subprocess
import sys

from ansible_collections.hostmaint.libvirt.plugins.callback import oneline

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", "..", ".."))


class _Event(object):
    def __init__(self, formatted_traceback=None, chain=None):
        self.formatted_traceback, self.chain = formatted_traceback, chain


class _Chain(object):
    def __init__(self, event):
        self.event = event


class _Summary(object):
    def __init__(self, event):
        self.event = event


def test_a_summary_without_a_traceback_is_no_exception_and_one_with_is():
    assert oneline.traceback_of(None) is None
    assert oneline.traceback_of(_Summary(_Event())) is None
    assert oneline.traceback_of(_Summary(_Event(chain=_Chain(_Event("Traceback: boom"))))) == "Traceback: boom"
    assert oneline.traceback_of("Traceback (most recent call last):\n  x\nValueError: y").endswith("ValueError: y")
    assert oneline.traceback_of("  ") is None


def _adhoc(callback, *module, **env):
    environ = dict(os.environ, ANSIBLE_STDOUT_CALLBACK=callback, ANSIBLE_LOAD_CALLBACK_PLUGINS="1",
                   ANSIBLE_DEPRECATION_WARNINGS="0", ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                   ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".build"), **env)
    cmd = [os.path.join(os.path.dirname(sys.executable), "ansible"), "-i", "localhost,", "localhost",
           "-c", "local", "-e", "ansible_python_interpreter=%s" % sys.executable, "-m"] + list(module)
    return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=environ, timeout=120, cwd=ROOT, check=False).stdout


def test_a_failed_task_is_one_line_with_no_false_exception():
    out = _adhoc("hostmaint.libvirt.oneline", "ansible.builtin.fail", "-a", "msg='hv9 is not a host of the inventory'")
    lines = [line for line in out.splitlines() if line.strip() and not line.startswith("[WARNING]")]
    assert lines == ['localhost | FAILED! => {"changed": false,"msg": "hv9 is not a host of the inventory"}'], out
    ok = _adhoc("hostmaint.libvirt.oneline", "ansible.builtin.ping")
    assert 'localhost | SUCCESS => {"changed": false,"ping": "pong"}' in ok.splitlines(), ok


def test_a_real_traceback_is_still_shown():
    out = _adhoc("hostmaint.libvirt.oneline", "ansible.builtin.fail", "-a", "msg=boom", ANSIBLE_DISPLAY_TRACEBACK="error")
    assert "An exception occurred during task execution" in out and "boom" in out, out
