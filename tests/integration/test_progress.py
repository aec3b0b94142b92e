# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Progress while evacuate.yml runs, as the operator's terminal shows it: the default stdout callback's output of
`ansible-playbook playbooks/evacuate.yml -l hv1` on a host with 8 guests, each line timed as it arrives.

The migrations are slowed by a bandwidth cap (hostmaint_libvirt_bandwidth_mib, which is no progress option: the
lines come with none) so that heartbeats happen. Judged: a start, a switchover and a settle check line for every
guest, while the playbook runs (not with its result); at least one heartbeat with moves done of the total, a move
in flight with its route, % copied, MiB/s and ladder rung, and the time left; and no gap over 10 s between two
progress lines from the first start to the last check."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor

from conftest import ROOT

GUESTS = ["pg%d" % i for i in range(1, 9)]
BANDWIDTH_MIB = 6  # an idle lab guest sends some tens of MiB: about 7 s a guest, two at a time
HEARTBEAT = re.compile(r"^\[hv1\] (\d+)/8 moves done(?: \(\d+ failed\))?, (\d+) in flight, (about \S+ left|time left "
                       r"not known yet) \(after \S+\)((?: \| .*)+)$")
MOVE = re.compile(r"^(pg\d) hv1->(hv[23]) (\d+)% (\d+\.\d) MiB/s (downtime \d+ ms \(\d/\d\)|auto-converge \d+%)$")


def timed_playbook(*args, timeout=900):
    """[(seconds since the start, line)] of ansible-playbook's output with the default stdout callback; its rc."""
    cmd = [shutil.which("ansible-playbook") or os.path.join(ROOT, ".venv", "bin", "ansible-playbook")] + list(args)
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1",
               ANSIBLE_STDOUT_CALLBACK="default",
               ANSIBLE_COLLECTIONS_PATH=os.environ.get("ANSIBLE_COLLECTIONS_PATH", os.path.join(ROOT, ".build")))
    env.pop("ANSIBLE_CALLBACK_RESULT_FORMAT", None)
    started = time.monotonic()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    lines = []
    for line in proc.stdout:
        lines.append((round(time.monotonic() - started, 2), line.rstrip("\n")))
        assert time.monotonic() - started < timeout, "evacuate.yml ran over %d s" % timeout
    return lines, proc.wait(60)


def test_evacuate_prints_its_progress_while_it_runs(lab):
    try:
        with ThreadPoolExecutor(4) as pool:  # four boot at a time: the lab's two cores boot them no faster
            list(pool.map(lambda name: lab.add_guest(name, "hv1"), GUESTS))
        lines, rc = timed_playbook("playbooks/evacuate.yml", "-l", "hv1",
                                   "-e", "hostmaint_libvirt_bandwidth_mib=%d" % BANDWIDTH_MIB)
        output = "\n".join("%7.2f %s" % line for line in lines)
        assert rc == 0, output[-6000:]
        shown = [(at, line) for at, line in lines if line.startswith("[hv1] ")]
        texts = [line for _at, line in shown]
        ended = [at for at, line in lines if line.startswith("TASK [") and "Report where each guest went" in line]
        assert ended, output[-3000:]
        first_at = dict()
        for guest in GUESTS:
            for what in ("started", "switched over", "checked: settle check passed"):
                pattern = r"^\[hv1\] %s hv1->hv[23]: %s \(at \S+\)$" % (guest, re.escape(what))
                found = [at for at, line in shown if re.match(pattern, line)]
                assert len(found) == 1, (guest, what, output[-6000:])
                first_at[(guest, what)] = found[0]
        # printed while the module ran: the first guest's start long before the module's task ended
        assert min(first_at[(g, "started")] for g in GUESTS) < ended[0] - 10, output[-6000:]
        beats = [HEARTBEAT.match(line) for line in texts if HEARTBEAT.match(line)]
        assert beats, output[-6000:]
        moving = [MOVE.match(part) for beat in beats for part in beat.group(4).split(" | ")[1:] if MOVE.match(part)]
        assert moving, [b.group(0) for b in beats]
        assert any(b.group(3).startswith("about ") for b in beats), [b.group(0) for b in beats]
        assert all(float(m.group(4)) <= BANDWIDTH_MIB * 1.5 for m in moving), [m.group(0) for m in moving]
        # from the first start to the last check something is in flight: no gap over 10 s between two lines
        start = min(first_at[(g, "started")] for g in GUESTS)
        end = max(first_at[(g, "checked: settle check passed")] for g in GUESTS)
        during = [at for at, _line in shown if start <= at <= end]
        gaps = [b - a for a, b in zip(during, during[1:])]
        print("progress lines: %d, heartbeats: %d, longest gap %.2f s over %.1f s in flight"
              % (len(shown), len(beats), max(gaps), end - start))
        print("\n".join("%7.2f %s" % line for line in shown))
        assert max(gaps) <= 10.0, output[-6000:]
        assert texts[-1] == "[hv1] 8/8 moves done in %s" % texts[-1].rsplit(" ", 1)[1]
        placement = lab.placement()
        assert all(placement[g] in ("hv2", "hv3") for g in GUESTS), placement
    finally:
        with ThreadPoolExecutor(4) as pool:
            list(pool.map(lab.remove_guest, GUESTS))
        lab.clear_maintenance()
