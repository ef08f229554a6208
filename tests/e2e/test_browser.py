"""The built book in a real browser: every page, as a reader opens it.

The pages are found by following local links from ``index.html`` (the crawl reads the built
HTML, so each page becomes its own test and a failure names the page). For each page:

- ``test_links``: every local ``href``/``src`` points at a file that exists, every
  ``#anchor`` at an id on its page, and nothing is loaded from another host;
- ``test_page``: in headless Chromium, no console error or uncaught exception, no failed
  local request, every image loaded, every figure shows a picture that is not blank, every
  formula typeset by MathJax with no raw TeX left over, and no code output that is an error
  traceback. A failing page is screenshotted to ``_build/screenshots/<page>.png``.

The landing page is always screenshotted to ``_build/screenshots/landing.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
import yaml
from browsercheck import check_links, check_page, discover_pages
from e2e_common import ROOT, book_dir_of

sys.path.insert(0, str(ROOT / "scripts"))
from executed_notebooks import toc_files  # noqa: E402


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "page" not in metafunc.fixturenames:
        return
    book = book_dir_of(metafunc.config)
    if not (book / "index.html").is_file():
        # One failing test that says what to do, rather than nothing (never a silent skip).
        metafunc.parametrize("page", ["(no built book)"])
        return
    metafunc.parametrize("page", discover_pages(book))


def _fail(page: str, problems: list[str], screenshot: Path | None = None) -> None:
    lines = [f"{page}: {len(problems)} problem(s)"] + [f"  - {p}" for p in problems]
    if screenshot:
        lines.append(f"  screenshot: {screenshot}")
    pytest.fail("\n".join(lines), pytrace=False)


def test_every_toc_page_is_reachable(book_dir: Path):
    """The crawl reaches every page of the table of contents, so no page goes unchecked."""
    pages = set(discover_pages(book_dir))
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    missing = [f"{entry}.html" for entry in toc_files(toc) if f"{entry}.html" not in pages]
    assert not missing, f"not reachable from index.html (or not built): {missing}"
    assert len(pages) >= len(toc_files(toc)) + 1


def test_links(book_dir: Path, page: str):
    problems = check_links(book_dir, page)
    if problems:
        _fail(page, problems)


def test_page(browser, book_url: str, screenshot_dir: Path, page: str):
    report = check_page(browser, book_url, page, screenshot_dir)
    if report.problems:
        _fail(page, report.problems, report.screenshot)


def test_landing_page(browser, book_url: str, book_dir: Path, screenshot_dir: Path):
    """index.html takes the reader to the root page of the toc; its screenshot is saved."""
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text(encoding="utf-8"))
    report = check_page(
        browser, book_url, "index.html", screenshot_dir, always_screenshot="landing"
    )
    shot = screenshot_dir / "landing.png"
    assert shot.is_file() and shot.stat().st_size > 10_000, f"no landing screenshot at {shot}"
    assert report.final_url.endswith(f"/{toc['root']}.html"), report.final_url
    if report.problems:
        _fail("index.html", report.problems, report.screenshot)
