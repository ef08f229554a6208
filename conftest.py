"""Repository-wide pytest configuration.

The test command re-executes the notebooks that the book build executed
(``_build/jupyter_execute``) with nbval and compares the cells tagged
``nbval-check-output``. myst-nb's ``glue`` writes its values as extra
``application/papermill.record/...`` outputs, which the build keeps out of the executed copy;
they are data for the book, not output a reader sees, so nbval must not compare them.
"""

from __future__ import annotations

GLUE_MIMETYPES = tuple(
    f"application/papermill.record/{mime}"
    for mime in (
        "text/plain",
        "text/html",
        "text/markdown",
        "text/latex",
        "image/png",
        "image/jpeg",
        "image/svg+xml",
        "application/json",
    )
)


def pytest_collection_modifyitems(items):  # noqa: D103 - a pytest hook
    seen = set()
    for item in items:
        parent = item.parent
        if id(parent) in seen or not hasattr(parent, "skip_compare"):
            continue
        seen.add(id(parent))
        parent.skip_compare = tuple(parent.skip_compare) + GLUE_MIMETYPES
