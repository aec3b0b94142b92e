# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Action plugin base for the engine modules: fills options from the inventory, then runs the module.

- ``name``: inventory_hostname; ``address``: this host's ansible_host.
- ``destinations``: the other hosts of this host's cluster, the inventory group named by the host
  variable ``hostmaint_libvirt_cluster_group`` (default ``hypervisors``), each with its ansible_host and
  its generation (``hostmaint_libvirt_generation``, else ``hostmaint_libvirt_observed_generation``, which
  the maintenance playbooks record) and its declared capacity (``hostmaint_libvirt_capacity_mib``, the module judges
  it), so that `-l host3` needs no other host in the play. A host outside
  the default group gets the other hosts of its own groups (all but 'all' and 'ungrouped'); one outside
  a group it was given fails. Given destinations must be a list of dicts with a name (one sentence
  otherwise); those that name inventory hosts without an address get that host's ansible_host, and without a
  capacity_mib that host's ``hostmaint_libvirt_capacity_mib`` when it sets one (a limit must not vanish). An IPv6
  ansible_host is put in brackets, as a URI needs it (``uris.inventory_address``, which the roles' peer_uri filter
  uses too). Destinations given as null count as not given.
- ``progress_file``: for the modules that move something (options.PROGRESS_MODULES), unless ``progress`` is off, in
  check mode, with a stdout callback that prints one JSON document (json, jsonl), or over a connection other than ssh and local: a name nobody can guess
  (module_utils.progress.path_for). The module then runs in a worker thread of this plugin, exactly as it would
  in the plugin's own (``_execute_module``: its standard output is still the SSH channel, whose hang-up stops the
  run when the controller goes away, runs.StopWatch), while this thread reads that file on the host 2 s after the
  start and every 2 s after (``cat``, through a copy of the connection and of its become plugin: ssh and local run
  each command as a process of its own, and the copies keep the per-command state those plugins hold on
  themselves, the become success marker and the sshpass pipe, apart from the module's) and prints what changed
  (progress.Follower) through Display, which a worker process hands to the controller's stdout callback at once.
  A run over in 2 s reads nothing. The module's last state comes back in its result (progress.RESULT_KEY, taken
  out here), so that events after the last read are printed too.
- every other option of the module (the list comes from its argument spec, module_utils.options):
  the task's argument, else the host variable ``hostmaint_libvirt_<option>`` (templated), else
  nothing, so that the module's default applies (``options.merge``). The identity options above are
  never read from ``hostmaint_libvirt_name``, ``_address`` or ``_destinations``; setting one warns.
"""

from __future__ import annotations

import copy
import json
import threading
import time
import uuid

from ansible import constants as C
from ansible.errors import AnsibleActionFail, AnsibleError
from ansible.module_utils.parsing.convert_bool import boolean
from ansible.plugins.action import ActionBase
from ansible.utils.display import Display

from ansible_collections.hostmaint.libvirt.plugins.module_utils import options, progress, uris
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

display = Display()

DEFAULT_CLUSTER_GROUP = options.DEFAULT_CLUSTER_GROUP

# Connection plugins whose commands may run beside the module's: each command is a process of its own (ssh: a new
# ssh client over the ControlMaster; local: a new subprocess).
PROGRESS_CONNECTIONS = ("local", "ssh")

# Stdout callbacks that print one machine-readable document, which progress lines on stdout would break.
DOCUMENT_CALLBACKS = ("json", "jsonl")


def check_destinations(destinations):
    """Given ``destinations``: a list of dicts, each with a name (the module judges the rest). Raises
    AnsibleActionFail with one sentence naming the entry, where the module's argument spec would say only
    "dictionary requested"."""
    if not isinstance(destinations, list):
        raise AnsibleActionFail("destinations must be a list of hosts, each a dict such as {name: hv2}, got %r"
                                % (destinations,))
    for entry in destinations:
        if not isinstance(entry, dict):
            raise AnsibleActionFail("destinations lists %r, which is not a dict: give each host as a dict such as "
                                    "{name: hv2, address: 192.0.2.12}" % (entry,))
        if not isinstance(entry.get("name"), str) or not entry["name"].strip():
            raise AnsibleActionFail("destinations lists %r without a host name: give each host's name in name"
                                    % (entry,))


def _generation(hostvars, host):
    vars_of = hostvars.get(host) or {}
    found = vars_of.get("hostmaint_libvirt_generation") or vars_of.get("hostmaint_libvirt_observed_generation")
    return str(found) if found else None


def _capacity(hostvars, host):
    """The capacity ``host`` declares (its ``hostmaint_libvirt_capacity_mib``), as the inventory gives it, or None."""
    found = (hostvars.get(host) or {}).get(options.variable("capacity_mib"))
    return None if found is None or found == "" else found


def given_destination(entry, hostvars):
    """A destination the task gives, completed from the inventory when it names an inventory host: its ansible_host
    when it has no address, that host's declared capacity and its generation when it gives none."""
    if entry["name"] not in hostvars:
        return entry
    entry = dict(entry)
    if not entry.get("address"):
        entry["address"] = uris.inventory_address(hostvars, entry["name"])
    if entry.get("capacity_mib") is None and _capacity(hostvars, entry["name"]) is not None:
        entry["capacity_mib"] = _capacity(hostvars, entry["name"])
    if not entry.get("generation") and _generation(hostvars, entry["name"]):
        entry["generation"] = _generation(hostvars, entry["name"])
    return entry


def cluster_peers(me, group_names, groups, cluster=None):
    """The hosts evacuating ``me`` may use: the other hosts of its cluster group (``cluster``, default
    'hypervisors'); without a cluster given, a host outside 'hypervisors' gets the other hosts of its groups."""
    name = cluster or DEFAULT_CLUSTER_GROUP
    if me in groups.get(name, []):
        return [host for host in groups[name] if host != me]
    if cluster:
        raise AnsibleActionFail("%s is not in its cluster group %s (hostmaint_libvirt_cluster_group): add it to that "
                                "group or name another" % (me, cluster))
    peers = []
    for group in group_names or []:
        for host in groups.get(group, []):
            if host != me and host not in peers:
                peers.append(host)
    return peers


class EngineAction(ActionBase):
    """Supplies inventory-derived arguments; the module does all the work."""

    TRANSFERS_FILES = False
    _requires_connection = True

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super(EngineAction, self).run(tmp, task_vars)
        module = self._task.resolved_action or self._task.action
        try:
            settable = options.inventory_options(options.module_spec(module))
        except HostmaintError as exc:
            raise AnsibleActionFail(exc.message) from None
        args = options.merge(self._task.args, task_vars, settable, template=self._templar.template)
        me = task_vars.get("inventory_hostname")
        for variable in options.ignored_variables(task_vars):
            display.warning("%s is ignored for %s: its name, address and destinations come from the inventory "
                            "(inventory_hostname, ansible_host, the other hosts of its groups) or from the task's "
                            "arguments" % (variable, me))
        hostvars = task_vars.get("hostvars") or {}
        args.setdefault("name", me)
        args.setdefault("address", uris.inventory_address(hostvars, me))
        if args.get("destinations") is None:
            cluster = task_vars.get("hostmaint_libvirt_cluster_group")
            cluster = self._templar.template(cluster) if cluster else None
            peers = cluster_peers(me, task_vars.get("group_names"), task_vars.get("groups") or {}, cluster)
            args["destinations"] = [dict(name=host, address=uris.inventory_address(hostvars, host),
                                         generation=_generation(hostvars, host),
                                         capacity_mib=_capacity(hostvars, host)) for host in peers]
        else:
            check_destinations(args["destinations"])
            args["destinations"] = [given_destination(d, hostvars) for d in args["destinations"]]
        if self._progress_wanted(module, args):
            result.update(self._run_with_progress(module, args, task_vars, me))
        else:
            result.update(self._execute_module(module_name=module, module_args=args, task_vars=task_vars))
        return result

    # -- progress while the module runs (module_utils/progress.py) --------------------------------------
    def _progress_wanted(self, module, args):
        if module.rpartition(".")[2] not in options.PROGRESS_MODULES:
            return False
        try:
            wanted = boolean(args.get("progress", True), strict=True)
        except TypeError:
            return False  # not a boolean: the module's argument spec says so
        transport = (getattr(self._connection, "transport", None) or "").rpartition(".")[2]
        callback = str(C.DEFAULT_STDOUT_CALLBACK or "").rpartition(".")[2]
        return (wanted and not self._task.check_mode and transport in PROGRESS_CONNECTIONS
                and callback not in DOCUMENT_CALLBACKS)

    def _run_with_progress(self, module, args, task_vars, me):
        """The module's result, after running it in a worker thread while this one prints its progress."""
        args = dict(args)
        args["progress_file"] = args.get("progress_file") or progress.path_for(uuid.uuid4().hex)
        box = {}

        def work():
            try:
                box["result"] = self._execute_module(module_name=module, module_args=args, task_vars=task_vars)
            except BaseException as exc:  # pylint: disable=broad-except
                box["error"] = exc  # raised again in the plugin's own thread, as if it had run there

        worker = threading.Thread(target=work, name="hostmaint-module")
        worker.daemon = True  # an interrupted controller does not wait for it: its ssh channel goes with it
        worker.start()
        follower = progress.Follower(me)
        reader = None
        next_read = time.monotonic() + progress.FIRST_POLL_S
        while True:
            worker.join(max(0.0, next_read - time.monotonic()))
            if not worker.is_alive():
                break
            reader = reader or self._progress_reader()
            # the read's scheduled time, not when its command returned: heartbeats keep the cadence of the reads
            for line in follower.lines(self._read_progress(reader, args["progress_file"]), next_read):
                display.display(line)
            next_read = max(next_read + progress.POLL_S, time.monotonic() + progress.POLL_S / 2)
        if "error" in box:
            raise box["error"]
        result = box["result"]
        for line in follower.lines(result.pop(progress.RESULT_KEY, None), time.monotonic(), final=True):
            display.display(line)
        return result

    def _progress_reader(self):
        """A copy of this plugin on a copy of its connection and become plugin, to run the reads with while the
        module's command runs: the connection plugins keep per-command state on themselves (ssh: the become
        success marker, its flags, the sshpass pipe), which the copies keep apart."""
        reader = copy.copy(self)
        reader._connection = copy.copy(self._connection)
        if getattr(self._connection, "become", None) is not None:
            reader._connection.become = copy.copy(self._connection.become)
        return reader

    @staticmethod
    def _read_progress(reader, path):
        """The progress file's dict, or None (not written yet, unreadable, the host not answering this time)."""
        try:
            found = reader._low_level_execute_command("cat -- %s" % reader._connection._shell.quote(path), sudoable=True)
        except AnsibleError as exc:
            display.vvv("cannot read the progress file %s: %s" % (path, exc))
            return None
        if found.get("rc") != 0:
            return None
        try:
            return json.loads(found.get("stdout") or "")
        except ValueError:
            return None
