# -*- coding: utf-8 -*-
# GNU General Public License v3.0+ (see LICENSES/GPL-3.0-or-later.txt or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The integration tests' lab kit (tests/integration/conftest.py: Lab, Prober, lab_cli, the lab fixture...),
loaded under its own name so that the fault suite shares it without two modules called conftest."""

from __future__ import annotations

import importlib.util
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
_SPEC = importlib.util.spec_from_file_location("hostmaint_lab_kit",
                                               os.path.join(ROOT, "tests", "integration", "conftest.py"))
kit = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(kit)
