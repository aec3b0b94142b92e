# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The README's demo (scripts/demo: the evacuate playbook on hv1), then the restore and preflight playbooks."""

from __future__ import annotations

import os
import re
import subprocess

from conftest import ROOT

DEMO_GUESTS = ["db1", "web1", "web2", "web3"]
ODD = "web 4 ünï"  # a name with spaces and non-ASCII letters, added to hv1 before the demo: it goes along


def run(*cmd):
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    return subprocess.run(list(cmd), cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=900, check=False)


def test_demo_evacuates_hv1_and_the_restore_playbook_brings_it_back(lab):
    try:
        lab.add_guest(ODD, "hv1")
        demo = run(os.path.join(ROOT, "scripts", "demo"))
        assert demo.returncode == 0, demo.stdout[-3000:]
        placement = lab.placement()
        assert " %s " % ODD in demo.stdout  # the lab's status, printed by the demo
        for guest in DEMO_GUESTS + [ODD]:
            assert placement[guest] in ("hv2", "hv3"), (guest, placement)
            assert len(lab.defined_on(guest)) == 1
        assert lab.in_maintenance("hv1")
        assert "failed=0" in demo.stdout

        restore = run("ansible-playbook", "playbooks/restore.yml", "-l", "hv1")
        assert restore.returncode == 0, restore.stdout[-3000:]
        # the operator sees every guest that came home, the worst pause and where the report is (the output's
        # YAML may wrap long lines)
        flat = " ".join(restore.stdout.split())
        for guest in DEMO_GUESTS + [ODD]:
            assert re.search(r"%s hv[23] -> hv1: migrated in [0-9.]+ s, pause [0-9]+ ms" % re.escape(guest), flat), guest
        assert re.search(r"ok: %d guest\(s\) moved, 0 failed, worst pause [0-9]+ ms" % (len(DEMO_GUESTS) + 1), flat), \
            flat[-2000:]
        assert re.search(r"report \S+/hostmaint-reports/\S+-restore-\w+\.md", flat), flat[-2000:]
        for guest in DEMO_GUESTS + [ODD]:
            assert lab.defined_on(guest) == ["hv1"] and lab.running_on(guest) == ["hv1"]
            assert lab.record("hv1", guest) is None
        assert not lab.in_maintenance("hv1")

        # preflight changes nothing and passes while every guest can be placed
        preflight = run("ansible-playbook", "playbooks/preflight.yml", "-l", "hv1")
        assert preflight.returncode == 0, preflight.stdout[-3000:]
        assert "changed=0" in preflight.stdout and "failed=0" in preflight.stdout
        for guest in DEMO_GUESTS:
            assert lab.defined_on(guest) == ["hv1"]
        assert not lab.in_maintenance("hv1")
    finally:
        for guest in DEMO_GUESTS + [ODD]:
            lab.remove_guest(guest)
        lab.clear_maintenance()
