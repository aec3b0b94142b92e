# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The order of a rolling upgrade: which host goes when. Pure, standard library only.

A roll takes one host of a cluster at a time, so that every other host of that cluster can take its
guests. Hosts keep their inventory order within their cluster. Serially, clusters follow one another;
in parallel, each batch holds the next host of every cluster that has one left (``batches`` gives the
batch sizes, for the play's ``serial``).
"""

from __future__ import annotations

from ansible_collections.hostmaint.libvirt.plugins.module_utils import generation

DEFAULT_CLUSTER = "hypervisors"


def clusters(hosts, cluster_of):
    """[(cluster, [hosts in order])], clusters in the order of their first host."""
    found = {}
    for host in hosts:
        found.setdefault(cluster_of(host) or DEFAULT_CLUSTER, []).append(host)
    return list(found.items())


def order(hosts, cluster_of, parallel=False):
    groups = [members for _name, members in clusters(hosts, cluster_of)]
    if not parallel:
        return [host for members in groups for host in members]
    ordered = []
    for index in range(max((len(m) for m in groups), default=0)):
        ordered += [members[index] for members in groups if index < len(members)]
    return ordered


def batches(hosts, cluster_of):
    """Batch sizes for a parallel roll over ``hosts`` in ``order(..., parallel=True)``."""
    sizes = [len(members) for _name, members in clusters(hosts, cluster_of)]
    return [sum(1 for size in sizes if size > index) for index in range(max(sizes, default=0))] or [1]


def skip(host, unfinished, marked, found, target="", pending=True):
    """(skipped, sentence): whether the roll leaves ``host`` alone because it is at its target already.

    A host with an unfinished maintenance cycle (``unfinished``: its state file exists) or in maintenance
    (``marked``) is never skipped: the cycle resumes there. Otherwise, with a ``target`` generation, a host whose
    generation (``found``) is at least the target is skipped; without one, a host with no update pending.
    """
    if unfinished or marked:
        why = "an unfinished maintenance cycle" if unfinished else "its maintenance mark"
        return False, "%s has %s: its cycle resumes" % (host, why)
    if target:
        if generation.compare(found, target) >= 0:
            return True, "%s is at the target (%s, target %s): skipped" % (host, found, target)
        return False, "%s is below the target (%s, target %s)" % (host, found, target)
    if not pending:
        return True, "%s is at the target (no update pending, %s): skipped" % (host, found)
    return False, "%s has updates pending" % host
