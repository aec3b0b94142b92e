# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host generations: how far a hypervisor is through a rolling upgrade, as one printable, comparable string.

Pure, standard library only. ``derive`` builds a generation from what a host runs, most important first:

    qemu-7.2.0 libvirt-9.0.0 kernel-6.1.0-37 os-12.11

QEMU comes first (its machine types and migration stream decide whether a guest can come back), then
libvirt, then the running kernel (``uname -r``: upstream version and Debian ABI number, the flavour left
out), then the installed OS point release (``/etc/debian_version``; left out when not known). An operator
may give a host its own generation instead, such as ``2026.11`` or ``7``.

``key`` and ``compare`` order any of these: a generation is read as runs of dotted numbers, compared as
numbers (6.10 after 6.9, 11.3.0 after 9.0.0), and the text between them, compared as text; a number sorts
before text at the same place, and a generation that is a prefix of another sorts before it. None (or a
blank string) is an unknown generation and sorts before every known one. Parts are separated by a space,
which sorts before every other character a part holds, so a longer part (kernel 6.1.0-37) sorts after a
shorter one (6.1.0) whatever follows. Compare generations of one kind: derived ones with derived ones,
an operator's scheme with itself.
"""

from __future__ import annotations

import re

from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError, version_string

# a run of dotted numbers: 6, 6.12, 6.12.48 (a trailing or doubled dot is text)
_NUMBERS = re.compile(r"(\d+(?:\.\d+)*)")
# what a kernel release keeps: its leading version, and the package's ABI number after a dash when the release
# has one (Debian 12 "6.1.0-37-amd64", Ubuntu "6.8.0-45-generic", EL "5.14.0-427.13.1.el9_4.x86_64")
_KERNEL = re.compile(r"^(\d+(?:\.\d+)*)(?:-(\d+(?:\.\d+)*))?")

# tags of a key's parts: an unknown generation below every known one; a number below text at the same place
_UNKNOWN, _KNOWN = 0, 1
_NUMBER, _TEXT = 0, 1


def _version(value, label):
    """A libvirt-encoded version as an int, or DecisionError naming it."""
    if isinstance(value, bool):
        raise DecisionError("invalid %s version %r: expected libvirt's integer encoding" % (label, value))
    try:
        number = int(value or 0)
    except (TypeError, ValueError):
        raise DecisionError("invalid %s version %r: expected libvirt's integer encoding" % (label, value))
    if number < 0:
        raise DecisionError("invalid %s version %r: it cannot be negative" % (label, value))
    return number


def kernel_version(kernel_release):
    """The comparable part of a kernel release: its version and package ABI number, the flavour left out.

    '6.1.0-37-amd64' -> '6.1.0-37', '6.12.48+deb13-amd64' -> '6.12.48', '5.14.0-427.13.1.el9_4.x86_64' ->
    '5.14.0-427.13.1'; '0' when the release does not start with a number.
    """
    match = _KERNEL.match((kernel_release or "").strip())
    if not match:
        return "0"
    version, abi = match.groups()
    return "%s-%s" % (version, abi) if abi else version


def derive(libvirt_version, qemu_version, kernel_release, os_version=None):
    """The generation of a host that runs these versions, e.g. 'qemu-7.2.0 libvirt-9.0.0 kernel-6.1.0-37 os-12.11'.

    ``libvirt_version`` and ``qemu_version`` in libvirt's integer encoding (``model.version_string``),
    ``kernel_release`` as ``uname -r`` prints it, ``os_version`` as /etc/debian_version holds it (None: not
    known, left out). An unknown version shows as 0 and sorts first. None when nothing at all is known.
    """
    libvirt_version = _version(libvirt_version, "libvirt")
    qemu_version = _version(qemu_version, "QEMU")
    kernel_release = (kernel_release or "").strip()
    os_version = "_".join(str(os_version).split()) if os_version is not None else ""
    if not (libvirt_version or qemu_version or kernel_release or os_version):
        return None
    parts = ["qemu-%s" % version_string(qemu_version), "libvirt-%s" % version_string(libvirt_version),
             "kernel-%s" % kernel_version(kernel_release)]
    if os_version:
        parts.append("os-%s" % os_version)
    return " ".join(parts)


def _text(generation):
    """A generation as stripped text, or None when it is unknown."""
    if generation is None:
        return None
    if isinstance(generation, (bool, float)):
        # YAML reads 2026.10 as the float 2026.1: the digits the operator wrote are gone
        raise DecisionError("invalid generation %r: give it as a string (quoted in YAML) so its digits are kept"
                            % (generation,))
    text = str(generation).strip()
    return text or None


def key(generation):
    """A sort key for a generation (None or blank: unknown, before every known one)."""
    text = _text(generation)
    if text is None:
        return (_UNKNOWN, ())
    parts = []
    for index, piece in enumerate(_NUMBERS.split(text)):
        if index % 2:
            parts.append((_NUMBER, tuple(int(number) for number in piece.split("."))))
        elif piece:
            parts.append((_TEXT, piece))
    return (_KNOWN, tuple(parts))


def compare(a, b):
    """-1, 0 or 1 as generation ``a`` is older than, the same as, or newer than ``b``."""
    key_a, key_b = key(a), key(b)
    return (key_a > key_b) - (key_a < key_b)
