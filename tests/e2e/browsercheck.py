"""Checks of a built HTML book: the static ones (pages, links, anchors) and, in Chromium, what
a reader sees (images that load and carry alt text, figures with a picture and a caption,
math, code outputs, console errors, failed requests).

Used by ``test_browser.py`` on the real book and by ``test_checkers.py`` on small made-up
pages, which prove that every detector fires when it should.

The link check is our own rather than Sphinx's ``linkcheck`` builder, which also requests
every external URL (there is no network here or in CI) and does not check the links that
the theme and myst-nb write into the pages. This one reads every built page and verifies
that each local ``href``/``src`` points at a file that exists and each ``#anchor`` at an
``id`` on the target page. External links (``https://...``) are not followed, but a page
that *loads* a script, stylesheet, image or frame from another host fails: the book must
work offline.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urlsplit

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

# Folders of a Sphinx build that hold assets, not pages to crawl.
ASSET_DIRS = ("_static", "_sources", "_images", "_downloads", "_sphinx_design_static")
# (tag, attribute) pairs whose URL the browser loads by itself.
LOADS = {
    ("script", "src"),
    ("img", "src"),
    ("iframe", "src"),
    ("source", "src"),
    ("video", "src"),
    ("audio", "src"),
    ("embed", "src"),
    ("object", "data"),
}
LOADING_LINK_RELS = {"stylesheet", "preload", "modulepreload", "icon", "shortcut", "manifest"}


# --------------------------------------------------------------------------- static


@dataclass
class Reference:
    tag: str
    attr: str
    url: str
    line: int
    rel: str = ""

    @property
    def loads(self) -> bool:
        """True when the browser fetches this URL while showing the page."""
        if self.tag == "link":
            return bool(set(self.rel.lower().split()) & LOADING_LINK_RELS)
        return (self.tag, self.attr) in LOADS


@dataclass
class ParsedPage:
    ids: set[str] = field(default_factory=set)
    refs: list[Reference] = field(default_factory=list)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.page = ParsedPage()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v for k, v in attrs if v is not None}
        line = self.getpos()[0]
        if "id" in values:
            self.page.ids.add(values["id"])
        if tag == "a" and "name" in values:
            self.page.ids.add(values["name"])
        for attr in ("href", "src", "data"):
            if attr in values and tag not in ("base",):
                ref = Reference(tag, attr, values[attr].strip(), line, values.get("rel", ""))
                self.page.refs.append(ref)
        if "srcset" in values:
            for item in values["srcset"].split(","):
                if item.strip():
                    self.page.refs.append(Reference(tag, "src", item.split()[0], line))
        if tag == "meta" and values.get("http-equiv", "").lower() == "refresh":
            match = re.search(r"url\s*=\s*['\"]?([^'\"\s;]+)", values.get("content", ""), re.I)
            if match:
                self.page.refs.append(Reference("meta", "refresh", match[1], line))


@functools.lru_cache(maxsize=512)
def _parse_cached(path: Path, mtime: float) -> ParsedPage:
    parser = _Parser()
    parser.feed(path.read_text(encoding="utf-8", errors="replace"))
    parser.close()
    return parser.page


def parse(path: Path) -> ParsedPage:
    path = Path(path).resolve()
    return _parse_cached(path, path.stat().st_mtime)


def is_external(url: str) -> bool:
    parts = urlsplit(url)
    return bool(parts.scheme or parts.netloc) or url.startswith("//")


def resolve(page: Path, url: str) -> tuple[Path, str]:
    """The file a local URL on ``page`` points at, and its fragment."""
    parts = urlsplit(url)
    path = unquote(parts.path)
    target = (page.parent / path).resolve() if path else page.resolve()
    if path.endswith("/") or target.is_dir():
        target = target / "index.html"
    return target, unquote(parts.fragment)


def discover_pages(book_dir: Path, start: str = "index.html") -> list[str]:
    """Every HTML page reachable from ``start`` through local links, as paths in the book."""
    book_dir = Path(book_dir).resolve()
    queue, seen = [book_dir / start], {(book_dir / start).resolve()}
    pages: list[str] = []
    while queue:
        page = queue.pop(0)
        if not page.is_file():
            continue
        pages.append(page.relative_to(book_dir).as_posix())
        for ref in parse(page).refs:
            if ref.tag not in ("a", "meta") or is_external(ref.url) or ref.url.startswith("#"):
                continue
            target, _ = resolve(page, ref.url)
            if target.suffix != ".html" or book_dir not in target.parents:
                continue
            if target.relative_to(book_dir).parts[0] in ASSET_DIRS or target in seen:
                continue
            seen.add(target)
            queue.append(target)
    return pages


def check_links(book_dir: Path, page_rel: str) -> list[str]:
    """Problems with the links of one page: missing files, missing anchors, off-site loads."""
    book_dir = Path(book_dir).resolve()
    page = book_dir / page_rel
    problems: list[str] = []
    for ref in parse(page).refs:
        url = ref.url
        if not url or url.startswith(("mailto:", "javascript:", "data:", "tel:")):
            continue
        where = f"line {ref.line}: <{ref.tag} {ref.attr}={url!r}>"
        if is_external(url):
            if ref.loads:
                problems.append(f"{where} loads a resource from another host (offline: fails)")
            continue
        target, fragment = resolve(page, url)
        if book_dir != target and book_dir not in target.parents:
            problems.append(f"{where} points outside the book ({target})")
            continue
        if not target.is_file():
            problems.append(f"{where} points at a missing file {target.relative_to(book_dir)}")
            continue
        if fragment and target.suffix == ".html" and fragment not in parse(target).ids:
            problems.append(
                f"{where}: no id {fragment!r} on {target.relative_to(book_dir).as_posix()}"
            )
    return problems


# --------------------------------------------------------------------------- serving


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    extensions_map = {
        **http.server.SimpleHTTPRequestHandler.extensions_map,
        ".js": "text/javascript",
        ".mjs": "text/javascript",
        ".woff": "font/woff",
        ".woff2": "font/woff2",
        ".svg": "image/svg+xml",
        ".ipynb": "application/json",
    }

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


@contextlib.contextmanager
def serve(directory: Path) -> Iterator[str]:
    """Serve ``directory`` on 127.0.0.1 (a free port) in a thread; yield its base URL."""
    handler = functools.partial(_QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


# --------------------------------------------------------------------------- browser

# Runs in the page once it has loaded; returns a list of problems (strings).
PAGE_CHECK_JS = r"""
async () => {
  const problems = [];
  const short = (s, n = 90) => {
    s = (s || '').replace(/\s+/g, ' ').trim();
    return s.length > n ? s.slice(0, n - 3) + '...' : s;
  };
  const withTimeout = (promise, ms) =>
    Promise.race([promise, new Promise(r => setTimeout(() => r('timeout'), ms))]);

  // Images: load every one (lazy ones too), then each must have pixels.
  const images = [...document.images];
  await withTimeout(Promise.all(images.map(img => {
    img.loading = 'eager';
    return img.decode().catch(() => null);
  })), 15000);
  for (const img of images) {
    if (!img.complete || img.naturalWidth === 0) {
      problems.push(`image did not load: ${img.getAttribute('src')}`);
    }
  }

  // Figures: each shows a picture with pixels, and the picture is not one flat colour.
  const distinctColours = img => {
    const canvas = document.createElement('canvas');
    canvas.width = 96; canvas.height = 96;
    const ctx = canvas.getContext('2d');
    ctx.fillStyle = '#fff'; ctx.fillRect(0, 0, 96, 96);
    ctx.drawImage(img, 0, 0, 96, 96);
    const data = ctx.getImageData(0, 0, 96, 96).data;
    const seen = new Set();
    for (let i = 0; i < data.length && seen.size < 3; i += 4) {
      seen.add((data[i] >> 3) << 10 | (data[i + 1] >> 3) << 5 | (data[i + 2] >> 3));
    }
    return seen.size;
  };
  for (const fig of document.querySelectorAll('figure, div.figure')) {
    const name = fig.id || (fig.querySelector('[id]') || {}).id || short(fig.textContent, 40);
    // Not the icons of buttons (copybutton puts an <svg> in every code block) or captions.
    const media = [...fig.querySelectorAll('img, svg, canvas, video, object, iframe')]
      .filter(el => !el.closest('figcaption, .caption, a.headerlink, button, .copybtn'));
    const shown = media.filter(el => {
      const box = el.getBoundingClientRect();
      const loaded = el.tagName !== 'IMG' || (el.complete && el.naturalWidth > 0);
      return loaded && box.width >= 24 && box.height >= 24;
    });
    if (!fig.querySelector('figcaption, .caption')) {
      problems.push(`figure ${name} has no caption`);
    }
    const bare = fig.cloneNode(true);  // the figure's own text, without caption and buttons
    bare.querySelectorAll('figcaption, .caption, button').forEach(el => el.remove());
    const text = short(bare.textContent);
    if (!shown.length) {
      const repr = text.match(/<Figure size [^>]*>|<matplotlib[^>]*>/);
      problems.push(`empty figure ${name}: no picture` + (!text ? '' : repr
        ? `, only the text "${repr[0]}" (stored without its image: ` +
          'was the notebook executed with MPLBACKEND=Agg?)'
        : `, it shows the text "${text}"`));
      continue;
    }
    for (const img of shown.filter(el => el.tagName === 'IMG')) {
      try {
        if (distinctColours(img) < 2) {
          problems.push(`figure ${name}: its image ${img.getAttribute('src')} is blank`);
        }
      } catch (e) { /* a cross-origin image cannot be read; the load check covers it */ }
    }
  }

  // Every picture of the page's content says in words what it shows (alt text).
  const content = document.querySelector('.bd-article, main, article') || document.body;
  for (const img of content.querySelectorAll('img')) {
    if (!(img.getAttribute('alt') || '').trim()) {
      problems.push(`image without alt text: ${img.getAttribute('src')}`);
    }
  }

  for (const out of document.querySelectorAll('.cell_output')) {
    const repr = out.closest('figure') ? null : out.textContent.match(/<Figure size [^>]*>/);
    if (repr) {
      problems.push(`a code cell shows "${repr[0]}" instead of the figure (stored without ` +
                    'its image: was the notebook executed with MPLBACKEND=Agg?)');
    }
  }

  // Math: Sphinx puts every formula in an element of class "math"; MathJax must have
  // typeset each one, without errors.
  const maths = [...document.querySelectorAll('.math')];
  if (maths.length) {
    if (!window.MathJax || !window.MathJax.startup || !window.MathJax.startup.promise) {
      problems.push(`${maths.length} formulas, but MathJax did not load`);
    } else {
      if (await withTimeout(window.MathJax.startup.promise, 20000) === 'timeout') {
        problems.push('MathJax did not finish typesetting within 20 s');
      }
      const raw = maths.filter(el => !el.querySelector('mjx-container'));
      if (raw.length) {
        problems.push(`${raw.length} of ${maths.length} formulas left unrendered, ` +
                      `the first: "${short(raw[0].textContent, 60)}"`);
      }
      for (const err of [...document.querySelectorAll('mjx-merror')].slice(0, 3)) {
        const message = err.getAttribute('data-mjx-error') || short(err.textContent);
        problems.push(`MathJax error: ${message}`);
      }
    }
  }
  // ...and no TeX is left in the prose (dollars the dollarmath extension did not parse).
  const root = document.querySelector('main') || document.body;
  const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
  const skip = 'pre, code, kbd, samp, script, style, textarea, mjx-container, .math, ' +
               '.highlight, .cell_output, .output, .cell_input';
  const rawTex = [/\$\$/, /\\\(|\\\)|\\\[|\\\]/, /\\begin\{/, /\$[^$\n]*[\\^_{][^$\n]*\$/];
  let rawCount = 0;
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const parent = node.parentElement;
    if (!parent || parent.closest(skip)) continue;
    if (rawTex.some(re => re.test(node.textContent))) {
      if (rawCount++ < 3) {
        problems.push(`raw TeX left in the text: "${short(node.textContent, 80)}"`);
      }
    }
  }

  // Code cells: no output is an error traceback.
  const tracebacks = document.querySelectorAll(
    '.output.traceback, .output.error, .cell_output .traceback, .output_error');
  for (const el of [...tracebacks].slice(0, 3)) {
    problems.push(`a code cell shows an error: "${short(el.textContent)}"`);
  }
  if (!tracebacks.length) {
    for (const el of document.querySelectorAll('.cell_output, .output')) {
      if (el.textContent.includes('Traceback (most recent call last)')) {
        problems.push(`a code cell output holds a traceback: "${short(el.textContent)}"`);
        break;
      }
    }
  }
  return problems;
}
"""


@dataclass
class PageReport:
    url: str
    problems: list[str]
    screenshot: Path | None = None
    final_url: str = ""


def slug(page_rel: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", page_rel.removesuffix(".html")) or "page"


def check_page(
    browser,
    base_url: str,
    page_rel: str,
    screenshot_dir: Path | None = None,
    *,
    always_screenshot: str | None = None,
    timeout_ms: int = 60000,
) -> PageReport:
    """Open one page in a fresh Chromium tab and list everything wrong with it.

    A screenshot (full page) is saved to ``screenshot_dir/<page>.png`` when there is a
    problem; ``always_screenshot="name"`` saves ``name.png`` (the visible part) in any case.
    """
    url = base_url + page_rel
    host = urlsplit(base_url).netloc
    problems: list[str] = []
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()

    def on_route(route) -> None:
        parts = urlsplit(route.request.url)
        if parts.scheme in ("http", "https", "ws", "wss") and parts.netloc != host:
            problems.append(f"requested {route.request.url} from another host (offline: fails)")
            route.abort()
        else:
            route.continue_()

    def on_console(msg) -> None:
        if msg.type == "error":
            loc = msg.location or {}
            where = f" ({loc.get('url', '')}:{loc.get('lineNumber', '')})" if loc else ""
            problems.append(f"console error: {msg.text}{where}")

    def on_failed(request) -> None:
        if urlsplit(request.url).netloc == host:
            problems.append(f"request failed: {request.url} ({request.failure})")

    def on_response(response) -> None:
        if urlsplit(response.url).netloc == host and response.status >= 400:
            problems.append(f"HTTP {response.status} for {response.url}")

    page.route("**/*", on_route)
    page.on("console", on_console)
    page.on("pageerror", lambda exc: problems.append(f"JavaScript error: {exc}"))
    page.on("requestfailed", on_failed)
    page.on("response", on_response)
    report = PageReport(url, problems)
    try:
        try:
            page.goto(url, wait_until="load", timeout=timeout_ms)
        except Exception as exc:  # still screenshot what there is
            problems.append(f"the page did not load: {str(exc).splitlines()[0]}")
        else:
            with contextlib.suppress(Exception):  # MathJax and fonts settle; no network here
                page.wait_for_load_state("networkidle", timeout=10000)
            problems.extend(page.evaluate(PAGE_CHECK_JS))
        report.final_url = page.url
        if always_screenshot and screenshot_dir is not None:
            report.screenshot = Path(screenshot_dir) / f"{always_screenshot}.png"
            page.screenshot(path=str(report.screenshot))
        if problems and screenshot_dir is not None:
            report.screenshot = Path(screenshot_dir) / f"{slug(page_rel)}.png"
            page.screenshot(path=str(report.screenshot), full_page=True)
    finally:
        context.close()
    return report
