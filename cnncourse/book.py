"""Helpers the chapters use to put computed values into the prose.

Every number in the book's prose is computed by the chapter's code and *glued* into the
text with myst-nb (``{glue:text}`` roles). One ``glue(...)`` call per value made a sixth of
the chapters' code lines glue calls; :func:`glue_values` glues several named values in one
call and hands them back, so a chapter reads as code about CNNs, not bookkeeping.

Outside a notebook (a plain ``python`` run, a doctest, a test) there is nothing to glue
into: the values are still validated and returned, so the same chapter code runs anywhere.
"""

from __future__ import annotations

import ast
import inspect
import keyword
import textwrap
from collections.abc import Callable
from typing import Any

__all__ = ["glue_values", "source_without_docstring"]


def _in_notebook() -> bool:
    """True when an IPython kernel is running this code (a notebook or the book build)."""
    try:
        from IPython import get_ipython
    except ImportError:  # pragma: no cover - IPython comes with every Jupyter install
        return False
    shell = get_ipython()
    return shell is not None and shell.__class__.__name__ == "ZMQInteractiveShell"


def glue_values(prefix: str = "", **values: Any) -> dict[str, Any]:
    """Glue several named values for the book's prose in one call.

    Parameters
    ----------
    prefix : str, optional
        Prepended to every name, usually the chapter's tag (``"ch4_"``), so that names stay
        unique across the book.
    **values
        ``name=value`` pairs. Each is glued as ``prefix + name`` without being displayed in
        the cell's output; the prose shows it with ``{glue:text}`prefix+name```.

    Returns
    -------
    dict
        The glued names (with the prefix) mapped to their values, so a chapter can glue and
        keep using what it computed.

    Raises
    ------
    ValueError
        When no value is given, or a glued name is not a valid identifier (myst-nb looks
        names up verbatim, so a typo would only surface as a missing value at build time).

    Examples
    --------
    >>> glue_values("ch0_", n_train=4000, accuracy=0.9876)
    {'ch0_n_train': 4000, 'ch0_accuracy': 0.9876}
    >>> glue_values("ch0_")
    Traceback (most recent call last):
    ...
    ValueError: glue_values() needs at least one name=value pair to glue
    """
    if not values:
        raise ValueError("glue_values() needs at least one name=value pair to glue")
    named = {f"{prefix}{name}": value for name, value in values.items()}
    for name in named:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"glued name {name!r} must be a Python identifier")
    if _in_notebook():
        from myst_nb import glue

        for name, value in named.items():
            glue(name, value, display=False)
    return named


def source_without_docstring(function: Callable) -> str:
    """The source code of a package function with its docstring replaced by ``...``.

    The chapters show the course's own code next to the text that explains it; the
    docstrings (parameters, examples) are long and are in the API reference, so the
    chapter shows only the code. The docstring is found with :mod:`ast`, not by searching
    for quotes, so strings inside the body stay untouched.

    Parameters
    ----------
    function : callable
        A Python function (not a built-in) whose source file is available.

    Returns
    -------
    str
        The dedented source, the docstring lines replaced by one ``...`` line.

    Raises
    ------
    TypeError
        When ``function`` is not a Python function or method.

    Examples
    --------
    >>> print(source_without_docstring(source_without_docstring).splitlines()[0])
    def source_without_docstring(function: Callable) -> str:
    >>> source_without_docstring(len)
    Traceback (most recent call last):
    ...
    TypeError: source_without_docstring() needs a Python function, got builtin_function_or_method
    """
    if not (inspect.isfunction(function) or inspect.ismethod(function)):
        raise TypeError(
            f"source_without_docstring() needs a Python function, got {type(function).__name__}"
        )
    source = textwrap.dedent(inspect.getsource(function))
    lines = source.splitlines()
    node = ast.parse(source).body[0]
    body = getattr(node, "body", [])
    first = body[0] if body else None
    if (
        isinstance(first, ast.Expr)
        and isinstance(first.value, ast.Constant)
        and isinstance(first.value.value, str)
    ):
        start, end = first.lineno - 1, first.end_lineno
        indent = lines[start][: len(lines[start]) - len(lines[start].lstrip())]
        lines[start:end] = [f"{indent}..."]
    return "\n".join(lines) + "\n"
