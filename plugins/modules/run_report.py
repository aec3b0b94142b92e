#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: run_report
short_description: Write the report of a maintenance run on the controller, as JSON, Markdown and HTML
version_added: 0.1.0
description:
  - Meant to run once on the controller (C(delegate_to) V(localhost), C(run_once) V(true)) as the last task of
    a maintenance playbook (evacuate, restore, maintain, rolling upgrade, storage evacuation).
  - Writes three files named after the run id into O(directory) - C(<run_id>.json) (the plan, every move with the
    engine's figures and timeline, the gates and the steps, per host), C(<run_id>.md) (a short summary - what
    moved where, how long it took, the worst pause, what failed and what to do next) and C(<run_id>.html).
  - The HTML page is one self-contained file (inline CSS and SVG, no JavaScript, nothing loaded from the network),
    so it opens from disk, as a mail attachment or in ARA's file view. It shows the status, the figures of the
    header (guests moved, blocked and failed, the worst, median and 95th percentile pause, the longest move, bytes)
    and the next steps; the hosts' steps on the run's clock; per evacuation or restore, the migrations in flight
    with their aggregate rate and one row per move (waiting for a slot, pre-copy with the convergence ladder's
    rungs, the pause, the settle check; failed and aborted moves with their reason); the disk moves; and tables of
    the same figures. Above 300 moves in one evacuation or restore the timeline shows one band per wave and the
    slowest and failed moves, while its table keeps every move.
  - Characters of the run id other than letters, digits, C(.), C(_) and C(-) become C(-) in the file names, so a
    report never lands outside O(directory).
  - O(directory) is created with mode C(0750) when missing; each file is written to a temporary file in
    O(directory) and renamed over the report (mode C(0640)), so a reader never sees half a report.
  - Nothing whose key contains C(password), C(secret), C(key) or C(token) is copied into the report, at any depth.
  - A file that already holds the same report is left alone (the report, in each format, holds no time of its
    own), so the same run reported twice changes nothing the second time.
author:
  - hostmaint.libvirt maintainers (@hostmaint)
attributes:
  check_mode:
    description: Can run in check mode and return the changes a real run would make.
    support: full
    details: Writes nothing and returns the paths it would write.
  diff_mode:
    description: Will return details on what has changed (or might change in check mode) when in diff mode.
    support: none
  platform:
    description: Runs on the controller (or any POSIX host the task is delegated to).
    support: full
    platforms: posix
options:
  directory:
    description:
      - The folder the report files go into; created (mode C(0750)) when missing.
      - The maintenance playbooks pass C(<directory the playbook is run from>/hostmaint-reports) unless told
        otherwise. Give an absolute path; a relative one is taken from the module's working directory.
    type: path
    required: true
  formats:
    description: Which files to write - V(json) (C(<run_id>.json)), V(markdown) (C(<run_id>.md)) and V(html)
      (C(<run_id>.html)), any of them.
    type: list
    elements: str
    choices: [json, markdown, html]
    default: [json, markdown, html]
  run:
    description:
      - What the playbook gathered during the run. Only C(run_id) is required; any other key may be missing or
        null, and keys the report does not know are ignored.
      - C(run_id) (string) names the files. C(playbook) (string, for example V(evacuate)) names the workflow.
        C(started) and C(ended) are ISO-8601 times (C(Z) or an offset; none means UTC).
        C(check_mode) (bool) marks a check-mode run; it is also recognised from results with a plan and no
        outcomes.
      - C(hosts) maps each host name to a dict with any of C(steps) (a list of C({name, status, started, ended,
        msg}), status V(ok), V(changed), V(failed) or V(skipped)), C(gates) (a list of C({check, host, ok, msg})),
        C(evacuate) and C(restore) (the registered results of M(hostmaint.libvirt.evacuate) and
        M(hostmaint.libvirt.restore), as they are - failed, skipped, or from check mode), and C(storage) (the
        registered result of M(hostmaint.libvirt.disk_move)).
    type: dict
    required: true
notes:
  - A run is V(failed) when a step failed, a gate did not pass, an engine task failed, or a move failed or was
    aborted; else V(partial) when a guest was blocked, not run, could not come home, or still runs on an evacuated
    host; else V(ok).
seealso:
  - module: hostmaint.libvirt.evacuate
  - module: hostmaint.libvirt.restore
"""

EXAMPLES = r"""
- name: Gather this host's part of the report
  ansible.builtin.set_fact:
    hostmaint_report_host:
      evacuate: "{{ evacuate_result | default(None) }}"
      gates:
        - {check: libvirtd, host: "{{ inventory_hostname }}", ok: true, msg: libvirtd answers}

- name: Write the run report on the controller
  hostmaint.libvirt.run_report:
    directory: "{{ lookup('ansible.builtin.env', 'PWD') }}/hostmaint-reports"
    run:
      run_id: "{{ evacuate_result.run_id }}"
      playbook: evacuate
      started: "{{ hostmaint_started }}"
      ended: "{{ now(utc=true).isoformat() }}"
      hosts: >-
        {{ dict(ansible_play_hosts_all | zip(ansible_play_hosts_all | map('extract', hostvars)
           | map(attribute='hostmaint_report_host', default={}))) }}
  delegate_to: localhost
  run_once: true
  register: run_report

- name: Show where the report is
  ansible.builtin.debug:
    msg: "Run report: {{ run_report.markdown_path }} (in a browser: {{ run_report.html_path }})"
  run_once: true

- name: Write only the JSON report
  hostmaint.libvirt.run_report:
    directory: /var/log/hostmaint
    formats: [json]
    run: "{{ hostmaint_run }}"
  delegate_to: localhost
  run_once: true
"""

RETURN = r"""
changed:
  description: Whether a report file was written (or, in check mode, would be); false when the files already held
    this report.
  returned: always
  type: bool
  sample: true
json_path:
  description: The absolute path of the JSON report; null when O(formats) leaves V(json) out.
  returned: always
  type: str
  sample: /home/ops/maintenance/hostmaint-reports/20261125T180000Z-1a2b3c.json
markdown_path:
  description: The absolute path of the Markdown summary; null when O(formats) leaves V(markdown) out.
  returned: always
  type: str
  sample: /home/ops/maintenance/hostmaint-reports/20261125T180000Z-1a2b3c.md
html_path:
  description: The absolute path of the HTML page; null when O(formats) leaves V(html) out.
  returned: always
  type: str
  sample: /home/ops/maintenance/hostmaint-reports/20261125T180000Z-1a2b3c.html
next_steps:
  description: What to do next, one plain sentence each (the Markdown summary's last section); empty when nothing
    is left to do.
  returned: always
  type: list
  elements: str
  sample: ["hv1 is still in maintenance: run playbooks/restore.yml -l hv1 once it is healthy."]
summary:
  description: The report's totals and its status.
  returned: always
  type: dict
  contains:
    status:
      description: V(ok), V(partial) or V(failed) (see the notes).
      type: str
    hosts:
      description: Hosts in the report.
      type: int
    moves:
      description: Moves the engine reported (planned moves of a check-mode run aside).
      type: int
    moved:
      description: Moves that moved their guest (V(migrated), V(moved_definition)).
      type: int
    failed:
      description: Moves that failed or were aborted.
      type: int
    blocked:
      description: Moves blocked during the run, plus guests a plan blocked or could not bring home.
      type: int
    not_run:
      description: Moves not started.
      type: int
    skipped:
      description: Guests a plan left where they are on purpose.
      type: int
    planned:
      description: Moves a check-mode plan would make.
      type: int
    bytes_transferred:
      description: Bytes the moves transferred.
      type: int
    worst_pause:
      description: The longest switchover pause of any move - C(guest), C(host), C(kind), C(source),
        C(destination), C(downtime_ms); null when no move paused a guest.
      type: dict
    longest_move:
      description: The longest move that moved its guest - C(guest), C(host), C(kind), C(source), C(destination),
        C(duration_s); null when nothing moved.
      type: dict
    steps_failed:
      description: Steps that failed.
      type: int
    gates_failed:
      description: Gates that did not pass.
      type: int
    disks_moved:
      description: Disks a storage evacuation (M(hostmaint.libvirt.disk_move)) moved.
      type: int
    disks_failed:
      description: Disk moves that failed or were aborted.
      type: int
    disks_refused:
      description: Disks a storage evacuation left where they are, with a reason.
      type: int
    disk_bytes:
      description: Bytes of the disks moved.
      type: int
  sample:
    status: ok
    hosts: 1
    moves: 2
    moved: 2
    failed: 0
    blocked: 0
    not_run: 0
    skipped: 0
    planned: 0
    bytes_transferred: 276676954
    worst_pause: {guest: web2, host: hv1, kind: evacuate, source: hv1, destination: hv3, downtime_ms: 61}
    longest_move: {guest: web2, host: hv1, kind: evacuate, source: hv1, destination: hv3, duration_s: 4.7}
    steps_failed: 0
    gates_failed: 0
    disks_moved: 0
    disks_failed: 0
    disks_refused: 0
    disk_bytes: 0
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report_files
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError


class RunReport(object):
    """The run_report module.

    Not a LibvirtModule: that base merges the libvirt connection options into every argument spec and opens
    libvirt connections, and this module runs on the controller with neither. It keeps the base's shape:
    ``run()`` returns the result or raises HostmaintError, ``execute()`` is the one exit point.
    """

    argument_spec = report_files.ARGUMENT_SPEC

    def __init__(self, module=None):
        if module is None:
            module = AnsibleModule(argument_spec=self.argument_spec, supports_check_mode=True)
        self.module = module
        self.params = module.params

    def run(self):
        return report_files.write(self.params, check_mode=self.module.check_mode)

    def execute(self):
        """Run the module and leave through the one exit point."""
        error = None
        result = {}
        try:
            result = self.run()
        except HostmaintError as exc:
            error = exc
        if error is not None:
            self.module.fail_json(msg=error.message, **error.details)
        self.module.exit_json(**result)


def main():
    RunReport().execute()


if __name__ == "__main__":
    main()
