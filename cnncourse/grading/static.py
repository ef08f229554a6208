"""Checks on an answer's source before anything runs: does it parse, does it import the course.

The ``cnncourse`` package ships reference implementations (``cnncourse.ops``) and the
task definitions, so an answer that imports it in any form scores 0 for that task. This
module catches the literal forms -- ``import cnncourse.ops``, ``from cnncourse.tasks import
...``, ``__import__("cnncourse")``, ``importlib.import_module("cnncourse.ops")``,
``exec("import cnncourse")``, ``sys.modules["cnncourse"]`` -- and the worker's audit hook
catches the rest at run time (where the platform allows, the package is not even there).

Examples
--------
>>> check_answer("import cnncourse.ops as ops\\ndef f(x):\\n    return ops.relu(x)")
['imports the course package (cnncourse), which ships the reference solutions (line 1)']
>>> check_answer("def f(x) return x")[0].startswith("syntax error on line 1")
True
"""

from __future__ import annotations

import ast

__all__ = ["check_answer", "function_names", "imported_modules"]

_FORBIDDEN = "cnncourse"
_LOADERS = {
    "__import__",
    "import_module",
    "exec",
    "eval",
    "compile",
    "run_module",
    "run_path",
    "spec_from_file_location",
    "find_spec",
    "open",
    "getattr",
    "__getitem__",
    "get",
}


def _is_forbidden(name: str | None) -> bool:
    return bool(name) and (name == _FORBIDDEN or name.startswith(_FORBIDDEN + "."))


def _mentions(node: ast.AST) -> bool:
    return any(
        isinstance(n, ast.Constant) and isinstance(n.value, str) and _FORBIDDEN in n.value
        for n in ast.walk(node)
    )


def _call_name(func: ast.expr) -> str:
    if isinstance(func, ast.Name):
        return func.id
    if isinstance(func, ast.Attribute):
        return func.attr
    return ""


def check_answer(source: str) -> list[str]:
    """Problems that make an answer score 0 without running it (empty list: none).

    A syntax error gives one message with the line; importing ``cnncourse`` gives one
    message per import with its line.
    """
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        if exc.lineno is None:  # e.g. null bytes
            return [f"your code could not be parsed ({exc.msg})"]
        return [f"syntax error on line {exc.lineno}: {exc.msg}"]
    except (ValueError, RecursionError, MemoryError) as exc:  # null bytes, absurd nesting
        return [f"your code could not be parsed ({type(exc).__name__})"]
    problems = []
    for node in ast.walk(tree):
        bad = False
        if isinstance(node, ast.Import):
            bad = any(_is_forbidden(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            bad = node.level == 0 and _is_forbidden(node.module)
        elif isinstance(node, ast.Call):
            bad = _call_name(node.func) in _LOADERS and _mentions(node)
        elif isinstance(node, ast.Subscript):
            bad = _mentions(node.slice)
        if bad:
            problems.append(
                "imports the course package (cnncourse), which ships the reference solutions "
                f"(line {getattr(node, 'lineno', '?')})"
            )
    return problems


def function_names(source: str) -> list[str]:
    """Names of the top-level functions a cell defines, in order (empty if it does not parse)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []
    return [n.name for n in tree.body if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)]


def imported_modules(source: str) -> set[str]:
    """The top-level packages a cell imports anywhere in it (empty if it does not parse).

    Examples
    --------
    >>> sorted(imported_modules("import numpy as np\\ndef f(x):\\n    import keras.ops\\n"))
    ['keras', 'numpy']
    >>> imported_modules("from tensorflow import nn")
    {'tensorflow'}
    """
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return set()
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module.split(".")[0])
    return found
