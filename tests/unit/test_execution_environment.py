# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The collection as an execution environment sees it: ansible-builder finds its Python and system
dependencies in the built collection, and makes a build context for an EE that installs it."""

from __future__ import annotations

import os
import subprocess
import sys
import tarfile

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.path.dirname(sys.executable)


def run(*cmd, cwd=ROOT):
    proc = subprocess.run(list(cmd), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          check=False, timeout=300)
    assert proc.returncode == 0, proc.stdout
    return proc.stdout


def test_ansible_builder_finds_the_dependencies_and_creates_a_build_context(tmp_path):
    run(os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--force", "--output-path", str(tmp_path))
    tarball = [f for f in os.listdir(tmp_path) if f.endswith(".tar.gz")][0]
    installed = tmp_path / "installed"
    with tarfile.open(tmp_path / tarball) as tar:
        names = tar.getnames()
        assert {"meta/execution-environment.yml", "meta/ee-bindep.txt", "meta/ee-requirements.txt"} <= set(names)
        tar.extractall(installed / "ansible_collections" / "hostmaint" / "libvirt")  # noqa: S202 our own tarball

    found = yaml.safe_load(run(os.path.join(BIN, "ansible-builder"), "introspect", str(installed)))
    assert "python3-libvirt [platform:dpkg]  # from collection hostmaint.libvirt" in found["system"]
    assert "libvirt-clients [platform:dpkg]  # from collection hostmaint.libvirt" in found["system"]
    assert "cryptography>=3.3  # from collection hostmaint.libvirt" in found["python"]

    definition = tmp_path / "execution-environment.yml"
    definition.write_text(yaml.safe_dump({
        "version": 3,
        "images": {"base_image": {"name": "quay.io/ansible/awx-ee:latest"}},
        "dependencies": {"galaxy": {"collections": [{"name": str(tmp_path / tarball), "type": "file"}]}},
    }))
    context = tmp_path / "context"
    run(os.path.join(BIN, "ansible-builder"), "create", "-f", str(definition), "--context", str(context))
    recipe = [f for f in ("Containerfile", "Dockerfile") if (context / f).exists()]
    assert recipe, os.listdir(context)
    text = (context / recipe[0]).read_text()
    # the image installs the collection, then its system and Python dependencies found by introspection
    assert "ansible-galaxy collection install" in text and "introspect" in text and "bindep" in text
    requirements = yaml.safe_load((context / "_build" / "requirements.yml").read_text())
    assert [c["name"] for c in requirements["collections"]] == [str(tmp_path / tarball)]
