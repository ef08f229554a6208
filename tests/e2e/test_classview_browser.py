"""The instructor's pages in a real browser: class report, similarity page, a feedback page.

A class of six exercise-1 submissions (``tests/classview_corpus.py``: a correct one, a
renamed copy, an identical copy, an independent solution, a wrong one, a time-out) is graded
with ``cnncourse grade``, with the feedback pages' book links pointing at the built book
served on 127.0.0.1. Then, in headless Chromium, each page must show no console error, load
every image, give every image alt text and every figure a caption, and load nothing from
another host (:func:`browsercheck.check_page`); every local link must point at a file that
exists (:func:`browsercheck.check_links`); and every link from the feedback page into the
book must reach a page of the built book and an ``id`` on it, i.e. the section exists.
"""

from __future__ import annotations

import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from browsercheck import check_links, check_page, parse, serve
from e2e_common import ROOT

sys.path.insert(0, str(ROOT / "tests"))
from classview_corpus import TEMPLATE, make_class  # noqa: E402

PAGES = ["class_report.html", "similarity.html", "feedback/erin.html", "feedback/alice.html"]


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory, book_url: str, book_dir: Path):
    from cnncourse.cli import main

    tmp = tmp_path_factory.mktemp("classview")
    subs = make_class(tmp / "submissions")
    out = tmp / "out"
    mp = pytest.MonkeyPatch()
    mp.setenv("CNNCOURSE_BOOK_URL", book_url)
    try:
        args = ["grade", str(subs), "-a", "ex01", "--template", str(TEMPLATE), "--out", str(out)]
        assert main([*args, "--timeout", "2", "--memory-mb", "512", "--no-progress"]) == 0
    finally:
        mp.undo()
    return out


@pytest.fixture(scope="module")
def class_url(graded_class: Path):
    with serve(graded_class) as url:
        yield url


@pytest.mark.parametrize("page", PAGES)
def test_instructor_page_in_the_browser(browser, class_url, graded_class, screenshot_dir, page):
    problems = check_links(graded_class, page)
    report = check_page(browser, class_url, page, screenshot_dir)
    problems += report.problems
    assert not problems, f"{page}: {problems} (screenshot: {report.screenshot})"


def test_class_report_shows_its_plots_with_alt_text(graded_class: Path):
    html = (graded_class / "class_report.html").read_text(encoding="utf-8")
    assert html.count("<img ") == 2 and html.count('alt="') == 2
    assert "frank" in html and "time-out" in html


def test_similarity_page_lists_the_copies_first(graded_class: Path):
    html = (graded_class / "similarity.html").read_text(encoding="utf-8")
    assert "A lead for a human, not a verdict" in html
    assert html.index("alice &amp; carol") < html.index("alice &amp; bob")
    assert "dave" not in html and "erin" not in html


def test_feedback_links_reach_sections_of_the_built_book(graded_class, book_url, book_dir):
    parsed = parse(graded_class / "feedback" / "erin.html")
    links = [r.url for r in parsed.refs if r.tag == "a" and r.url.startswith(book_url)]
    assert len(links) == 3, parsed.refs  # one per task of exercise 1
    for link in links:
        parts = urlsplit(link)
        target = book_dir / parts.path.removeprefix(urlsplit(book_url).path)
        assert target.is_file(), f"{link}: no page {target} in the built book"
        assert parts.fragment in parse(target).ids, f"{link}: no section #{parts.fragment}"
