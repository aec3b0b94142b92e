# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The run report's files: what hostmaint.libvirt.run_report writes, shared by its module and by its action plugin,
which runs it on the controller in the controller's own process (plugins/action/run_report.py): a module run
through a local connection would cost the playbook about 0.6 s for each report. No Ansible import."""

from __future__ import annotations

import os
import tempfile

from ansible_collections.hostmaint.libvirt.plugins.module_utils import report, report_html
from ansible_collections.hostmaint.libvirt.plugins.module_utils.errors import HostmaintError

DIRECTORY_MODE = 0o750
FILE_MODE = 0o640

ARGUMENT_SPEC = dict(
    directory=dict(type="path", required=True),
    formats=dict(type="list", elements="str", choices=list(report.FORMATS), default=list(report.FORMATS)),
    run=dict(type="dict", required=True),
)


def read_text(path):
    """The UTF-8 text of path, or None when there is no such file."""
    try:
        with open(path, "rb") as handle:
            return handle.read().decode("utf-8", "replace")
    except FileNotFoundError:
        return None


def write_atomic(path, text):
    """Write text to path through a temporary file in the same folder, renamed over path."""
    descriptor, temporary = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", dir=os.path.dirname(path))
    try:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(text.encode("utf-8"))
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(temporary, FILE_MODE)
        os.replace(temporary, path)
        temporary = None
    finally:
        if temporary is not None and os.path.exists(temporary):
            os.unlink(temporary)


def write(params, check_mode=False):
    """Write the report of ``params["run"]`` into ``params["directory"]`` in each of ``params["formats"]`` (the
    options of ARGUMENT_SPEC, judged); a file that already says the same is left alone, check mode writes nothing.
    Returns the module's result; raises HostmaintError with one sentence."""
    formats = [name for name in report.FORMATS if name in params["formats"]]
    if not formats:
        raise HostmaintError("cannot write the run report: formats is empty, give one or more of json, "
                             "markdown and html")
    data = report.build(params["run"])
    directory = os.path.abspath(params["directory"])
    if os.path.exists(directory) and not os.path.isdir(directory):
        raise HostmaintError("cannot write the run report to %s: it is a file, not a directory" % directory,
                             directory=directory)
    names = dict(zip(report.FORMATS, report.file_names(data["run_id"])))
    renderers = dict(json=report.to_json, markdown=report.markdown, html=report_html.render)
    texts = dict((name, renderers[name](data)) for name in formats)
    paths = dict((name, os.path.join(directory, names[name])) for name in formats)
    try:
        pending = [name for name in formats if read_text(paths[name]) != texts[name]]
        if pending and not check_mode:
            if not os.path.isdir(directory):
                os.makedirs(directory)
                os.chmod(directory, DIRECTORY_MODE)
            for name in pending:
                write_atomic(paths[name], texts[name])
    except OSError as exc:
        raise HostmaintError("cannot write the run report %s to %s: %s"
                             % (data["run_id"], exc.filename or directory, exc.strerror or exc),
                             directory=directory)
    return dict(changed=bool(pending), json_path=paths.get("json"), markdown_path=paths.get("markdown"),
                html_path=paths.get("html"), next_steps=data["next_steps"], summary=report.summary(data))
