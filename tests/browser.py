# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A page as a browser shows it: headless Chromium (Debian's chromium, requirements-apt.txt) renders an HTML file,
and gives back the DOM it built (--dump-dom) or a screenshot (--screenshot).

Standard library only, so the unit tests (tests/unit/test_browser.py) and the lab tests
(tests/integration/test_report_html.py) share it:

    from browser import Browser                 # with tests/ on sys.path
    browser = Browser()                         # BrowserMissing when no Chromium is installed
    dom = browser.dom("/path/report.html")      # the serialised DOM after rendering
    png = browser.screenshot("/path/report.html", "/tmp/report.png")
    width, height, lines = png_figures(png)     # a PNG's size and how many of its scanlines differ

Every run is bounded (``timeout``, 60 s): Chromium runs in its own process group, killed whole when it overruns,
with a profile folder of its own (removed afterwards), so runs in parallel (pytest-xdist) do not share a profile
lock. --no-sandbox because the tests run as root in containers where Chromium's sandbox cannot start.
"""

from __future__ import annotations

import os
import shutil
import signal
import struct
import subprocess
import tempfile
import zlib

# What Debian and other distributions call the browser, in the order looked for.
NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable")

FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--disable-sync", "--mute-audio")


class BrowserMissing(RuntimeError):
    """No Chromium on this machine."""


class BrowserFailed(RuntimeError):
    """Chromium did not render the page: it overran its time, exited with an error or wrote nothing."""


def find():
    """The path of a Chromium, or None."""
    for name in NAMES:
        path = shutil.which(name)
        if path:
            return path
    return None


class Browser(object):
    """Headless Chromium, one process per call."""

    def __init__(self, executable=None, timeout=60.0, window=(1400, 1800)):
        self.executable = executable or find()
        if not self.executable:
            raise BrowserMissing("no Chromium found (looked for %s): apt-get install chromium" % ", ".join(NAMES))
        self.timeout = float(timeout)
        self.window = window

    def _run(self, path, *flags):
        url = "file://" + os.path.abspath(path)
        profile = tempfile.mkdtemp(prefix="hostmaint-chromium-")
        command = [self.executable] + list(FLAGS) + ["--user-data-dir=" + profile,
                                                     "--window-size=%d,%d" % self.window] + list(flags) + [url]
        try:
            proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True,
                                    universal_newlines=True)
            try:
                out, err = proc.communicate(timeout=self.timeout)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.communicate()
                raise BrowserFailed("Chromium did not render %s within %.0f s" % (path, self.timeout))
        finally:
            shutil.rmtree(profile, ignore_errors=True)
        if proc.returncode != 0:
            raise BrowserFailed("Chromium exited %d rendering %s: %s" % (proc.returncode, path, err.strip()[-2000:]))
        return out

    def dom(self, path):
        """The DOM Chromium built from the HTML file at path, serialised (what the reader's browser has)."""
        dom = self._run(path, "--dump-dom")
        if "<html" not in dom:
            raise BrowserFailed("Chromium dumped no document for %s" % path)
        return dom

    def screenshot(self, path, png):
        """A PNG of the HTML file at path, window-sized, written to png (its folder made); returns png."""
        folder = os.path.dirname(os.path.abspath(png))
        os.makedirs(folder, exist_ok=True)
        if os.path.exists(png):
            os.unlink(png)
        self._run(path, "--screenshot=" + os.path.abspath(png))
        if not os.path.isfile(png) or os.path.getsize(png) == 0:
            raise BrowserFailed("Chromium wrote no screenshot of %s to %s" % (path, png))
        return png


def png_figures(path):
    """(width, height, distinct scanlines) of a PNG, read with zlib alone. A blank or broken screenshot has a handful
    of distinct (filtered) scanlines, since its rows repeat; a page of text and charts has hundreds."""
    with open(path, "rb") as handle:
        data = handle.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("%s is not a PNG" % path)
    offset, chunks, header = 8, [], None
    while offset < len(data):
        length, kind = struct.unpack(">I4s", data[offset:offset + 8])
        body = data[offset + 8:offset + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", body)
        elif kind == b"IDAT":
            chunks.append(body)
        offset += 12 + length
    if header is None:
        raise ValueError("%s has no PNG header chunk" % path)
    width, height, depth, colour_type = header[:4]
    channels = dict(((0, 1), (2, 3), (3, 1), (4, 2), (6, 4))).get(colour_type, 4)
    stride = 1 + (width * channels * depth + 7) // 8  # a filter byte, then the row's samples
    raw = zlib.decompress(b"".join(chunks))
    lines = set(raw[row * stride:(row + 1) * stride] for row in range(height))
    return width, height, len(lines)
