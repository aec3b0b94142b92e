# -*- coding: utf-8 -*-
# Copyright: hostmaint.libvirt contributors
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one error type the collection's layers raise; only base.LibvirtModule turns it into a failure."""

from __future__ import annotations


class HostmaintError(Exception):
    """A failure with one clear sentence naming the object, and structured details beside it."""

    def __init__(self, message, **details):
        super(HostmaintError, self).__init__(message)
        self.message = message
        self.details = details
