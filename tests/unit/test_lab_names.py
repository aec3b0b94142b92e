# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The lab takes the guest names libvirt takes: spaces and non-ASCII letters are names, not bad input."""

from __future__ import annotations

import importlib.util
import os

import pytest

PATH = os.path.join(os.path.dirname(__file__), "..", "lab", "lab.py")
SPEC = importlib.util.spec_from_file_location("hostmaint_lab", PATH)
LAB = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(LAB)


@pytest.mark.parametrize("name", ["web1", "web 4", "ev3-café-ü", "数据库", "a" * 63, "ü" * 31, "db.1_x", "5a"])
def test_names_libvirt_takes_are_valid(name):
    assert LAB.valid_guest_name(name)


@pytest.mark.parametrize("name", ["", "a/b", "-x", " lead", "trail ", "tab\there", "a" * 64, "ü" * 32, "line\nbreak", "5",
                                  "8a2c5d3e-0f4b-4c5a-9d2e-1b3c4d5e6f70"])
def test_names_libvirt_or_virsh_would_refuse_are_not(name):
    assert not LAB.valid_guest_name(name)


def test_a_lab_cut_into_clusters_writes_one_group_per_cluster_under_hypervisors(tmp_path, monkeypatch):
    state = {"hosts": ["hv1", "hv2", "hv3", "hv4"], "clusters": 2, "subnet": "10.213.7.0/24"}
    assert LAB.cluster_groups(state) == [("cluster_a", ["hv1", "hv2"]), ("cluster_b", ["hv3", "hv4"])]
    assert LAB.cluster_groups(dict(state, clusters=1)) == [("hypervisors", ["hv1", "hv2", "hv3", "hv4"])]
    monkeypatch.setattr(LAB, "LAB", str(tmp_path))
    LAB.write_inventory(state)
    import yaml  # pylint: disable=import-outside-toplevel
    inventory = yaml.safe_load((tmp_path / "inventory.yml").read_text())
    clusters = inventory["all"]["children"]["hypervisors"]["children"]
    assert sorted(clusters["cluster_a"]["hosts"]) == ["hv1", "hv2"] and sorted(clusters["cluster_b"]["hosts"]) == ["hv3", "hv4"]
    assert clusters["cluster_b"]["vars"]["hostmaint_libvirt_cluster_group"] == "cluster_b"
    assert clusters["cluster_a"]["hosts"]["hv2"]["ansible_host"] == "10.213.7.12"
