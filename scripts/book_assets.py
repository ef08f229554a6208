"""Sphinx extension: the book's pages load nothing from other hosts and log no errors.

Enabled in ``_config.yml``::

    sphinx:
      local_extensions:
        book_assets: scripts/

It does two things, both checked by ``tests/e2e/test_browser.py``:

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
"""

from __future__ import annotations

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


def setup(app: Sphinx) -> dict:
    app.setup_extension("sphinx.ext.mathjax")
    app.connect("config-inited", _use_local_mathjax)
    app.connect("build-finished", _copy_mathjax)
    app.connect("html-page-context", _drop_duplicate_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True, "version": "1"}
