"""Paths and settings shared by the end-to-end tests (see conftest.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent


def setting(config: pytest.Config, option: str, env: str, default: Path) -> Path:
    value = config.getoption(option, default=None) or os.environ.get(env)
    return Path(value).resolve() if value else default


def book_dir_of(config: pytest.Config) -> Path:
    return setting(config, "--book-dir", "CNNCOURSE_BOOK_DIR", ROOT / "_build" / "html")


def chromium_path() -> str:
    wanted = os.environ.get("CNNCOURSE_CHROMIUM")
    for candidate in (wanted, "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).is_file():
            return candidate
    pytest.fail(
        "no Chromium found: install Debian's `chromium` (apt-get install chromium) or set "
        "CNNCOURSE_CHROMIUM to a Chromium binary",
        pytrace=False,
    )
