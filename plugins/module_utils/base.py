# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""LibvirtModule: the AnsibleModule glue every module of the collection stands on.

A module declares ``argument_spec`` and writes ``run()``, which returns the result dict or raises
HostmaintError. ``execute()`` is the one exit point: it closes every connection and then calls
exit_json or fail_json. Tests inject a fake connection factory through the constructor
(``adapter_factory``: a URI -> a new adapter; ``open_adapter`` by default).
"""

from __future__ import annotations

from ansible.module_utils.basic import AnsibleModule, missing_required_lib

from ansible_collections.hostmaint.libvirt.plugins.module_utils import libvirt_adapter
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.model import DecisionError
from ansible_collections.hostmaint.libvirt.plugins.module_utils.options import CONNECTION_SPEC


def open_adapter(uri):
    """A new LibvirtAdapter for uri (its connection opens on first use); HostmaintError without libvirt-python."""
    if libvirt_adapter.libvirt is None:
        raise HostmaintError(missing_required_lib("libvirt-python (python3-libvirt)"),
                             exception=libvirt_adapter.LIBVIRT_IMPORT_ERROR)
    return libvirt_adapter.LibvirtAdapter(uri)


class LibvirtModule(object):
    """Base of every hostmaint.libvirt module."""

    argument_spec = {}
    supports_check_mode = True
    mutually_exclusive = []
    required_together = []

    def __init__(self, module=None, adapter_factory=None):
        if module is None:
            spec = dict(CONNECTION_SPEC)
            spec.update(self.argument_spec)
            module = AnsibleModule(argument_spec=spec, supports_check_mode=self.supports_check_mode,
                                   mutually_exclusive=self.mutually_exclusive,
                                   required_together=self.required_together)
        self.module = module
        self.params = module.params
        self._factory = adapter_factory or open_adapter
        self._adapters = {}

    def adapter(self, uri=None):
        """The adapter for uri (this host's own libvirt by default), opened once per run."""
        uri = uri or self.params["uri"]
        if uri not in self._adapters:
            self._adapters[uri] = self._factory(uri)
        return self._adapters[uri]

    def close(self):
        for adapter in self._adapters.values():
            adapter.close()
        self._adapters = {}

    def validate(self):
        """Check options beyond what the argument spec can; raise HostmaintError."""

    def run(self):
        raise NotImplementedError

    def finish(self, result, error):
        """Called once run() is over (result, or the error it raised), before the connections close."""

    def execute(self):
        """Run the module and leave through the one exit point."""
        error = None
        result = {}
        try:
            self.validate()
            result = self.run()
        except (HostmaintError, DecisionError) as exc:
            error = exc
        finally:
            self.finish(result, error)
            self.close()
        if error is not None:
            self.module.fail_json(msg=error.message, **error.details)
        for warning in result.pop("warnings", []):
            self.module.warn(warning)
        self.module.exit_json(**result)
