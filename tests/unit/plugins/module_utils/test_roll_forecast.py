# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a rolling upgrade's check mode prints (module_utils.roll_forecast): the roll in lines, its forecast from
the simulator with a range that covers the calibration's spread, and the past reports it calibrates on."""

from __future__ import annotations

import json

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report, roll, roll_forecast
from ansible_collections.hostmaint.libvirt.tests.unit.plugins import report_samples


def lab_roll(**options):
    hosts = [dict(name="hv%d" % i, cluster="hypervisors", capacity_mib=2048) for i in (1, 2, 3)]
    guests = [dict(name="g%d" % i, host="hv%d" % (1 + i % 3), memory_mib=256) for i in range(4)]
    return roll.new(hosts, guests, **options)


def test_the_plan_says_the_roll_its_batches_and_a_forecast_whose_range_covers_the_spread():
    state = lab_roll(parallel_hosts=2)
    found = roll_forecast.forecast(state)
    lines = roll_forecast.lines(state, found)
    assert lines[:2] == ["roll of 3 host(s): up to 2 hosts of a cluster at once, guests return home",
                         "cluster hypervisors: hv1, hv2, hv3"]
    assert "  hv1: 2 guest(s), 0.5 GiB to move off" in lines
    assert "  batches (in maintenance together): hv1, hv2; hv3" in lines
    low, high = found["range_s"]
    # the lab's figures are known to 10 %: every one of them faster and slower gives the range
    assert low <= 0.95 * found["makespan_s"] and high >= 1.05 * found["makespan_s"], found
    assert found["moves"] == 8 and found["calibration"].startswith("the lab's figures")
    assert [line.split(":")[0] for line in lines if line.startswith("  hv") and "preflight" in line] == [
        "  hv1", "  hv2", "  hv3"]


def test_a_roll_with_every_host_at_its_target_has_nothing_to_forecast():
    state = roll.new([dict(name="hv1", capacity_mib=2048, phase="skipped", reason="hv1 is at the target"),
                      dict(name="hv2", capacity_mib=2048, phase="skipped", reason="hv2 is at the target")], [])
    lines = roll_forecast.lines(state, roll_forecast.forecast(state))
    assert lines[-1] == "forecast: nothing to roll" and "  hv1: hv1 is at the target" in lines


def test_past_reports_are_the_newest_run_reports_and_nothing_else(tmp_path):
    assert roll_forecast.past_reports(str(tmp_path / "none")) == []
    built = report.build(report_samples.maintain_run())
    (tmp_path / "a.json").write_text(report.to_json(built))
    (tmp_path / "b.json").write_text("{not json")
    (tmp_path / "c.json").write_text(json.dumps(dict(hosts={})))  # no move, no step: nothing to learn from
    (tmp_path / "rolls").mkdir()
    (tmp_path / "rolls" / "r.json").write_text(json.dumps(lab_roll()))  # a roll's state, not a report
    found = roll_forecast.past_reports(str(tmp_path))
    assert len(found) == 1 and found[0]["run_id"] == built["run_id"]
    forecast = roll_forecast.forecast(lab_roll(), report_dir=str(tmp_path))
    assert forecast["calibration"].startswith("1 run report(s) (reboot, preflight, gate_before, gate_after")
