# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations


class ModuleDocFragment(object):

    DOCUMENTATION = r"""
options:
  uri:
    description:
      - The libvirt connection URI of the host the module works on.
      - The module runs on that host, so the default is its own system daemon.
      - The scheme must be one libvirt accepts for QEMU - V(qemu), V(qemu+tls), V(qemu+ssh), V(qemu+tcp), V(qemu+unix),
        V(qemu+libssh), V(qemu+libssh2) or V(qemu+ext) - and the path V(/system) (or V(/session)).
    type: str
    default: qemu:///system
requirements:
  - libvirt-python (Debian and Ubuntu package C(python3-libvirt)) on the managed host.
"""

    ATTRIBUTES = r"""
attributes:
  check_mode:
    description: Can run in check mode and return the changes a real run would make.
    support: full
  diff_mode:
    description: Will return details on what has changed (or might change in check mode) when in diff mode.
    support: none
  platform:
    description: Target hosts are libvirt (KVM/QEMU) hypervisors.
    support: full
    platforms: posix
"""
