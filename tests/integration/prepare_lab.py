# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Bring the lab up and set it up (playbooks/setup.yml) ahead of the lab tests, as their session fixture would, and
leave what the fixture keeps in .lab/prepared.json: the machine's own configuration files as they were before, and
setup.yml's output. make test runs it beside the checks that need no lab; the fixture then takes this lab
(HOSTMAINT_LAB_PREPARED=1) instead of building one.

    python tests/integration/prepare_lab.py
"""

from __future__ import annotations

import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from conftest import PREPARED, ansible_playbook, lab_cli, machine_files  # noqa: E402  pylint: disable=wrong-import-position


def main():
    if os.path.exists(PREPARED):
        os.unlink(PREPARED)
    before = machine_files()
    lab_cli("up", "--hosts", "3", timeout=900)
    setup = ansible_playbook("playbooks/setup.yml")
    if setup.returncode != 0:
        print(setup.stdout[-4000:])
        return 1
    lab_cli("save", "setup")
    with open(PREPARED, "w") as handle:
        json.dump(dict(machine_before=before, setup_output=setup.stdout), handle)
    print("prepare_lab: the lab is up and set up; %s written" % PREPARED)
    return 0


if __name__ == "__main__":
    sys.exit(main())
