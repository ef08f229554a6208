"""Sphinx extension: the book's pages load nothing from other hosts, log no errors, read well.

Enabled in ``_config.yml``::

    sphinx:
      local_extensions:
        book_assets: scripts/

It does four things; the first two are checked by ``tests/e2e/test_browser.py``, the last
two keep the notebooks that nbval re-executes (``_build/jupyter_execute``) honest:

1. **MathJax from the book itself.** Sphinx's default ``mathjax_path`` is a CDN URL; a
   reader without a network (the test machines, a train, a ``file://`` copy of the book)
   would see raw TeX. At the end of every HTML build this copies MathJax 3.2.2 from the
   ``sphinx-mathjax-offline`` package (a PyPI wheel that carries MathJax's files; see
   requirements.txt) into ``_build/html/_static/mathjax`` and points ``mathjax_path`` at the
   copy. Only what the pages load is copied (about 7 MB): the combined ``tex-mml-chtml.js``,
   the TeX extensions it autoloads, its fonts, and the menu with its accessibility modules.
   Setting ``mathjax_path`` in ``_config.yml`` (e.g. back to a CDN) turns this off.

2. **Each inline script once.** Sphinx 7.4 writes an inline ``<script>`` that an extension
   registers after the builder started twice into every page (it compares a file name of
   ``None`` with ``''``). For sphinx-thebe's ``const THEBE_JS_URL = ...`` the second copy
   is a JavaScript error on every page ("Identifier 'THEBE_JS_URL' has already been
   declared"). The duplicates are dropped when each page is written.

3. **A cell's printed lines in one box.** Every ``print`` that reaches the kernel at a
   different moment (one line per epoch of a training callback, say) is a separate stream
   output, and the HTML shows each in a box of its own. myst-nb's ``nb_merge_streams``
   joins them when it renders a page, but it does so *in place* (myst-nb 1.x,
   ``coalesce_streams``): the first stream output gains all the text while the others
   stay, so the executed copy in ``_build/jupyter_execute`` that the test command hands to
   nbval would print every line twice. Here myst-nb merges a copy, and the executed
   notebook keeps exactly what the kernel printed.

4. **Executed copies with their outputs, also from the cache.** When a notebook's code is
   unchanged, myst-nb 1.x takes its outputs from the execution cache, but writes the
   *source* notebook, without outputs, to ``_build/jupyter_execute``. nbval then had
   nothing to compare on a second ``./dev.sh test``, and passed vacuously. Here the cached
   outputs are merged into the notebook object that myst-nb writes.
"""

from __future__ import annotations

import copy
import importlib.metadata
import shutil
from pathlib import Path
from typing import Any

from sphinx.application import Sphinx
from sphinx.config import Config
from sphinx.errors import ExtensionError

LOCAL_MATHJAX = "mathjax/tex-mml-chtml.js"  # relative to _static/
PACKAGE = "sphinx-mathjax-offline"
# What tex-mml-chtml.js loads at run time, relative to its own folder.
PARTS = ("tex-mml-chtml.js", "input/tex/extensions", "output/chtml/fonts", "ui", "a11y", "sre")


def mathjax_source() -> Path:
    """The folder of the installed MathJax 3 files; ``ExtensionError`` when missing."""
    try:
        dist = importlib.metadata.distribution(PACKAGE)
    except importlib.metadata.PackageNotFoundError:
        raise ExtensionError(
            f"book_assets: the package {PACKAGE!r} (MathJax for offline pages) is not "
            "installed; run `pip install -r requirements.txt` (./dev.sh does)"
        ) from None
    folder = Path(str(dist.locate_file(f"{PACKAGE}/static/mathjax")))
    if not (folder / PARTS[0]).is_file():
        raise ExtensionError(f"book_assets: no {PARTS[0]} in {folder}")
    return folder


def copy_mathjax(outdir: str | Path) -> Path:
    """Copy the MathJax files the pages load to ``outdir/_static/mathjax``; return it."""
    source = mathjax_source()
    target = Path(outdir) / "_static" / "mathjax"
    for part in PARTS:
        src, dst = source / part, target / part
        if src.is_dir():
            shutil.copytree(src, dst, dirs_exist_ok=True)
        else:
            dst.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, dst)
    return target


def _use_local_mathjax(app: Sphinx, config: Config) -> None:
    option = config.values["mathjax_path"]
    default = option.default if hasattr(option, "default") else option[0]  # Sphinx < 7.3
    if config.mathjax_path == default:  # not set by the book
        mathjax_source()  # fail now, before any notebook runs
        config.mathjax_path = LOCAL_MATHJAX


def _copy_mathjax(app: Sphinx, exc: Exception | None) -> None:
    if exc is None and app.builder.format == "html" and app.config.mathjax_path == LOCAL_MATHJAX:
        copy_mathjax(app.outdir)


def _script_key(script: Any) -> tuple:
    filename = getattr(script, "filename", script) or ""
    attributes = getattr(script, "attributes", {}) or {}
    return (filename, getattr(script, "priority", 0), tuple(sorted(attributes.items())))


def _drop_duplicate_scripts(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree: Any
) -> None:
    scripts = context.get("script_files")
    if not scripts:
        return
    seen: set[tuple] = set()
    unique = []
    for script in scripts:
        key = _script_key(script)
        if key not in seen:
            seen.add(key)
            unique.append(script)
    scripts[:] = unique  # the builder restores its own list after each page


def _merge_streams_of_a_copy() -> None:
    """Make myst-nb's ``nb_merge_streams`` leave the executed notebook's outputs untouched."""
    from myst_nb.core import render

    merge = render.coalesce_streams
    if getattr(merge, "merges_a_copy", False):
        return

    def coalesce_copy(outputs: list) -> list:
        return merge(copy.deepcopy(outputs))

    coalesce_copy.merges_a_copy = True  # type: ignore[attr-defined]
    render.coalesce_streams = coalesce_copy


def _write_cached_outputs() -> None:
    """Make myst-nb's cache client put the cached outputs into the notebook it writes."""
    from myst_nb.core.execute.cache import NotebookClientCache

    start = NotebookClientCache.start_client
    if getattr(start, "writes_cached_outputs", False):
        return

    def start_client(self: Any) -> None:
        written = self._notebook  # the object myst-nb writes to _build/jupyter_execute
        start(self)
        merged = self._notebook
        if merged is not written:  # a cache hit: outputs came back in a new object
            written.cells = merged.cells
            written.metadata = merged.metadata
            self._notebook = written

    start_client.writes_cached_outputs = True  # type: ignore[attr-defined]
    NotebookClientCache.start_client = start_client


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.mathjax")
    _merge_streams_of_a_copy()
    _write_cached_outputs()
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
