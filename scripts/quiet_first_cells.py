"""Make the first code cell of notebooks import TensorFlow quietly (cnncourse.quiet).

Usage::

    python scripts/quiet_first_cells.py chapters/*.ipynb solutions/*.ipynb
    cnncourse assign            # the exercises follow their solutions

The first code cell of every chapter, exercise and solution starts with::

    from cnncourse.quiet import import_tensorflow

    import_tensorflow()  # first, before anything loads TensorFlow: ...

so that JupyterLab shows no red TensorFlow start-up lines under it (tests/test_quiet.py
checks every notebook). The old preamble ``import os`` + ``os.environ.setdefault(
"TF_CPP_MIN_LOG_LEVEL", ...)`` is replaced (``import os`` stays if the notebook uses ``os``);
a notebook without it gets the two lines on top. Only that cell's source changes.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import nbformat

HEADER = (
    "from cnncourse.quiet import import_tensorflow\n\n"
    "import_tensorflow()  # first: TensorFlow loads without its red C++ start-up log lines\n"
)
OLD = re.compile(
    r'^import os\n\s*os\.environ\.setdefault\("TF_CPP_MIN_LOG_LEVEL", "\d"\)[^\n]*\n\n?'
)


def quiet_source(source: str, uses_os_elsewhere: bool) -> str:
    """The first cell's new source; unchanged when it already starts with the helper."""
    if source.startswith(HEADER.split("\n")[0]):
        return source
    match = OLD.match(source)
    rest = source[match.end() :] if match else source
    uses_os = uses_os_elsewhere or bool(re.search(r"\bos\.", rest))
    keep_os = "import os\n" if match and uses_os else ""
    joiner = "\n" if rest.strip() else ""
    return HEADER + joiner + keep_os + rest


def main(paths: list[str]) -> int:
    for name in paths:
        path = Path(name)
        nb = nbformat.read(path, as_version=4)
        code = [c for c in nb.cells if c.cell_type == "code"]
        if not code:
            print(f"{path}: no code cell", file=sys.stderr)
            continue
        later = any(re.search(r"\bos\.", c.source) for c in code[1:])
        new = quiet_source(code[0].source, later)
        if new != code[0].source:
            code[0].source = new
            nbformat.write(nb, path)
            print(f"{path}: first cell imports TensorFlow quietly")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
