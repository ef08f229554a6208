"""The detectors of browsercheck.py fire on made-up broken pages and stay quiet on a good one.

Without these, a checker that silently found nothing would pass a broken book.
"""

from __future__ import annotations

import struct
import sys
import zlib
from pathlib import Path

import pytest
from browsercheck import check_links, check_page, discover_pages, serve
from e2e_common import ROOT

sys.path.insert(0, str(ROOT / "scripts"))
import book_assets  # noqa: E402


def png(width: int, height: int, pixel) -> bytes:
    """A small RGB PNG; ``pixel(x, y) -> (r, g, b)``."""
    rows = b"".join(
        b"\0" + bytes(c for x in range(width) for c in pixel(x, y)) for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


# What Sphinx writes for MathJax 3 (sphinx.ext.mathjax), pointed at the local copy.
MATHJAX = """
<script>window.MathJax = {"options": {
  "processHtmlClass": "tex2jax_process|mathjax_process|math|output_area",
  "ignoreHtmlClass": "tex2jax_ignore|mathjax_ignore|document"}}</script>
<script defer src="_static/mathjax/tex-mml-chtml.js"></script>
"""


def html(body: str, head: str = "") -> str:
    return (
        f"<!DOCTYPE html><html><head><meta charset='utf-8'>{head}</head>"
        f"<body class='document'><main>{body}</main></body></html>"
    )


PAGES = {
    "index.html": html(
        "<h1 id='top'>Good page</h1>"
        "<p>A formula <span class='math notranslate nohighlight'>\\(x^2 + \\sum_i w_i\\)</span>."
        " Prices are $5 and $10, which is not TeX.</p>"
        "<div class='math notranslate nohighlight'>\\[y = \\max(0, x)\\]</div>"
        "<figure id='fig-good'><img src='_images/plot.png' alt='a plot'>"
        "<figcaption>A plot.</figcaption></figure>"
        "<figure id='fig-linked'><a class='reference internal image-reference' "
        "href='_images/plot.png'><img src='_images/plot.png' alt='the plot, linked'></a>"
        "<figcaption><p>Linked. <a class='headerlink' href='#fig-linked'>#</a></p></figcaption>"
        "</figure>"
        "<pre>echo $$ \\( not math in code \\)</pre>"
        "<div class='cell_output'><pre>ValueError: shown on purpose, not a traceback</pre></div>"
        "<a href='#top'>top</a> <a href='other.html#sec'>other</a> <a href='sub/'>sub</a>"
        "<a href='https://example.org/'>an external link is fine</a>"
        "<a href='bad_image.html'>1</a><a href='bad_links.html'>2</a>"
        "<a href='console.html'>3</a><a href='raw_math.html'>4</a>"
        "<a href='empty_figure.html'>5</a><a href='blank_figure.html'>6</a>"
        "<a href='traceback.html'>7</a><a href='external.html'>8</a>"
        "<a href='bad_tex.html'>9</a><a href='no_alt.html'>10</a>"
        "<a href='_static/style.css'>not a page</a>",
        head=MATHJAX,
    ),
    "other.html": html("<h2 id='sec'>Section</h2>"),
    "sub/index.html": html("<p>sub</p><a href='../index.html'>back</a>"),
    "bad_image.html": html("<img src='_images/missing.png' alt='gone'>"),
    "bad_links.html": html(
        "<a href='nowhere.html'>x</a> <a href='other.html#no-such-anchor'>y</a>"
        "<a href='#also-missing'>z</a> <a href='../../etc/passwd'>w</a>"
    ),
    "console.html": html(
        "<script>console.error('boom from the page')</script>"
        "<script>definitelyNotDefined()</script>"
    ),
    "raw_math.html": html(
        "<p>The loss is $$L = \\sum_i x_i$$ and $w_{ij}$ stays raw.</p>"
        "<span class='math notranslate nohighlight'>\\(x\\)</span>"
    ),
    "bad_tex.html": html(
        "<span class='math notranslate nohighlight'>\\(x^1^2\\)</span>", head=MATHJAX
    ),
    "empty_figure.html": html(
        "<figure id='fig-empty'><div class='output text_plain'><div class='highlight'><pre>"
        "&lt;Figure size 640x480 with 1 Axes&gt;</pre><button class='copybtn'>"
        "<svg width='20' height='20'><rect width='20' height='20'/></svg></button></div></div>"
        "<figcaption>Caption</figcaption></figure>"
    ),
    "blank_figure.html": html(
        "<figure id='fig-blank'><img src='_images/blank.png' alt='x'>"
        "<figcaption>c</figcaption></figure>"
    ),
    "no_alt.html": html(
        "<figure id='fig-mute'><img src='_images/plot.png'></figure>"
        "<p><img src='_images/plot.png' alt=' '></p>"
    ),
    "traceback.html": html(
        "<div class='cell_output docutils container'>"
        "<div class='output traceback highlight-ipythontb notranslate'><pre>"
        "Traceback (most recent call last)\nZeroDivisionError: division by zero</pre></div></div>"
    ),
    "external.html": html(
        "<p>x</p>",
        head="<script src='https://cdn.example.invalid/lib.js'></script>"
        "<link rel='stylesheet' href='https://cdn.example.invalid/s.css'>",
    ),
}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("site")
    for name, text in PAGES.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text, encoding="utf-8")
    (root / "_images").mkdir()
    (root / "_images" / "plot.png").write_bytes(
        png(40, 30, lambda x, y: (255, 255, 255) if (x - y) % 7 else (30, 60, 200))
    )
    (root / "_images" / "blank.png").write_bytes(png(40, 30, lambda x, y: (255, 255, 255)))
    (root / "_static").mkdir()
    (root / "_static" / "style.css").write_text("body{}")
    book_assets.copy_mathjax(root)
    return root


@pytest.fixture(scope="module")
def site_url(site: Path):
    with serve(site) as url:
        yield url


def test_crawl_finds_the_linked_pages_only(site: Path):
    pages = discover_pages(site)
    assert pages[0] == "index.html"
    assert set(pages) == set(PAGES)  # sub/ resolved to sub/index.html; CSS is no page


def test_link_checker(site: Path):
    assert check_links(site, "index.html") == []
    problems = "\n".join(check_links(site, "bad_links.html"))
    assert "missing file nowhere.html" in problems
    assert "no id 'no-such-anchor' on other.html" in problems
    assert "no id 'also-missing' on bad_links.html" in problems
    assert "outside the book" in problems
    external = "\n".join(check_links(site, "external.html"))
    assert external.count("from another host") == 2


def test_good_page_passes_and_its_math_renders(browser, site_url: str, tmp_path: Path):
    report = check_page(browser, site_url, "index.html", tmp_path, always_screenshot="good")
    assert report.problems == []
    assert (tmp_path / "good.png").stat().st_size > 1000


@pytest.mark.parametrize(
    ("page", "expected"),
    [
        ("bad_image.html", ["image did not load: _images/missing.png", "HTTP 404"]),
        ("console.html", ["console error: boom from the page", "JavaScript error:"]),
        ("raw_math.html", ["raw TeX left in the text", "MathJax did not load"]),
        ("bad_tex.html", ["MathJax error: Double exponent"]),
        ("empty_figure.html", ['empty figure fig-empty: no picture, only the text "<Figure size']),
        ("blank_figure.html", ["figure fig-blank: its image _images/blank.png is blank"]),
        ("traceback.html", ["a code cell shows an error", "ZeroDivisionError"]),
        (
            "no_alt.html",
            ["figure fig-mute has no caption", "image without alt text: _images/plot.png"],
        ),
        ("external.html", ["cdn.example.invalid/lib.js from another host"]),
    ],
)
def test_detector_fires(browser, site_url: str, tmp_path: Path, page: str, expected: list[str]):
    report = check_page(browser, site_url, page, tmp_path)
    text = "\n".join(report.problems)
    for fragment in expected:
        assert fragment in text, f"{page}: expected {fragment!r} among:\n{text}"
    assert report.screenshot is not None and report.screenshot.is_file()
