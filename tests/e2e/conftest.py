"""End-to-end tests: the built book in Chromium, the exercises in JupyterLab, the README path.

They run against a book that is already built (``./dev.sh test`` builds it first), so they
are NOT part of the unit-test run ``pytest tests``: this conftest makes pytest ignore this
folder unless it was asked for by path, as in

    python -m pytest tests/e2e                   # what ./dev.sh test runs last
    python -m pytest tests/e2e/test_browser.py   # one file

or with ``CNNCOURSE_E2E=1``. Requested, they never skip: a missing book, browser or
README command is a failure that says what to do.

Settings (environment variables or options):

- ``--book-dir`` / ``CNNCOURSE_BOOK_DIR``: the built HTML book (default ``_build/html``).
- ``--screenshots`` / ``CNNCOURSE_SCREENSHOTS``: where screenshots go (default: the
  ``screenshots`` folder next to the book, i.e. ``_build/screenshots``).
- ``CNNCOURSE_CHROMIUM``: the Chromium binary (default ``/usr/bin/chromium``, else
  ``chromium`` on ``PATH``).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from e2e_common import HERE, book_dir_of, chromium_path, setting


def _requested(config: pytest.Config) -> bool:
    if os.environ.get("CNNCOURSE_E2E", "") not in ("", "0"):
        return True
    for arg in config.invocation_params.args:
        if arg.startswith("-"):
            continue
        path = Path(config.invocation_params.dir, arg.split("::")[0]).resolve()
        if path == HERE or HERE in path.parents:
            return True
    return False


def pytest_ignore_collect(collection_path: Path, config: pytest.Config) -> bool | None:
    """Leave tests/e2e out of ``pytest tests`` (and of a bare ``pytest``)."""
    if HERE in (collection_path, *collection_path.parents) and not _requested(config):
        return True
    return None


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cnncourse end-to-end")
    group.addoption("--book-dir", help="built HTML book (default: _build/html)")
    group.addoption("--screenshots", help="screenshot folder (default: _build/screenshots)")


@pytest.fixture(scope="session")
def book_dir(pytestconfig: pytest.Config) -> Path:
    """The built book; a failure (never a skip) when it is not there."""
    path = book_dir_of(pytestconfig)
    if not (path / "index.html").is_file():
        pytest.fail(
            f"no built book at {path} (index.html missing): build it first with "
            "`./dev.sh book`, or point CNNCOURSE_BOOK_DIR / --book-dir at one",
            pytrace=False,
        )
    return path


@pytest.fixture(scope="session")
def screenshot_dir(pytestconfig: pytest.Config) -> Path:
    default = book_dir_of(pytestconfig).parent / "screenshots"
    path = setting(pytestconfig, "--screenshots", "CNNCOURSE_SCREENSHOTS", default)
    path.mkdir(parents=True, exist_ok=True)
    for old in path.glob("*.png"):  # every run leaves only its own screenshots
        old.unlink()
    return path


@pytest.fixture(scope="session")
def book_url(book_dir: Path):
    """The book served over HTTP on 127.0.0.1 (a random free port), for the session."""
    from browsercheck import serve

    with serve(book_dir) as url:
        yield url


@pytest.fixture(scope="session")
def browser():
    """Headless Chromium (the system one) driven by Playwright, for the session."""
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(
            "the Python package `playwright` is missing: pip install -r requirements.txt",
            pytrace=False,
        )
    from browsercheck import CHROMIUM_ARGS

    with sync_playwright() as pw:
        instance = pw.chromium.launch(
            executable_path=chromium_path(), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield instance
        finally:
            instance.close()
