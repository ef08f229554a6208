"""Write the hostile corpus: one submission per attack on the grader, and its manifest.

Run ``python tests/hostile/make_corpus.py`` after changing this file; the files it writes
are committed. Files end in ``.json`` rather than ``.ipynb`` so that linters leave
these deliberately broken notebooks alone. Every submission is a variation of
``template_ex01.json`` (a student
notebook of exercise 1 in the course's format). ``manifest.json`` says, per file, the most
points it may earn (``max_total``: anything above is false credit), the exact total where
it is known, the status, and words that the reason must contain.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path

HERE = Path(__file__).resolve().parent

SETUP = "import numpy as np\nfrom cnncourse.checking import check"
STUB = {
    "ex01.dense_params": (
        "def dense_params(n_inputs: int, units: int) -> int:\n"
        '    """Parameters of a Dense layer: weights and biases."""\n'
        "    raise NotImplementedError('One weight per input and unit, plus one bias per unit.')"
    ),
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        '    """Parameters of a Conv2D layer with square kernels."""\n'
        "    raise NotImplementedError('k*k*c weights per filter, plus its bias.')"
    ),
    "ex01.shift_images": (
        "def shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:\n"
        '    """Shift images (N, H, W) by dx columns and dy rows, filling with zeros."""\n'
        "    raise NotImplementedError('Copy a slice into np.zeros_like(x).')"
    ),
}
GOOD = {
    "ex01.dense_params": (
        "def dense_params(n_inputs: int, units: int) -> int:\n    return n_inputs * units + units"
    ),
    "ex01.conv_params": (
        "def conv_params(kernel_size: int, in_channels: int, filters: int) -> int:\n"
        "    return kernel_size * kernel_size * in_channels * filters + filters"
    ),
    "ex01.shift_images": (
        "def shift_images(x: np.ndarray, dx: int, dy: int) -> np.ndarray:\n"
        "    out = np.zeros_like(x)\n"
        "    h, w = x.shape[1:3]\n"
        "    if abs(dx) >= w or abs(dy) >= h:\n"
        "        return out\n"
        "    rows_src = slice(max(0, -dy), h - max(0, dy))\n"
        "    rows_dst = slice(max(0, dy), h - max(0, -dy))\n"
        "    cols_src = slice(max(0, -dx), w - max(0, dx))\n"
        "    cols_dst = slice(max(0, dx), w - max(0, -dx))\n"
        "    out[:, rows_dst, cols_dst] = x[:, rows_src, cols_src]\n"
        "    return out"
    ),
}
FN = {
    "ex01.dense_params": "dense_params",
    "ex01.conv_params": "conv_params",
    "ex01.shift_images": "shift_images",
}
POINTS = {"ex01.dense_params": 2, "ex01.conv_params": 2, "ex01.shift_images": 3}


def cell(kind: str, source: str, meta: dict | None = None) -> dict:
    c = {"cell_type": kind, "metadata": meta or {}, "source": source}
    if kind == "code":
        c.update(execution_count=None, outputs=[])
    return c


def notebook(
    answers: dict[str, str],
    *,
    checks: dict[str, str] | None = None,
    task_meta: bool = True,
    drop: tuple[str, ...] = (),
) -> dict:
    cells = [cell("markdown", "# Exercise 1: Why CNNs?"), cell("code", SETUP)]
    for task, fn in FN.items():
        if task in drop:
            continue
        meta = {"cnncourse": {"task": task, "points": POINTS[task]}, "tags": ["task"]}
        cells.append(cell("code", answers.get(task, STUB[task]), meta if task_meta else {}))
        check = (checks or {}).get(task, f'check("{task}", {fn})')
        cells.append(cell("code", check, {"cnncourse": {"check": task}, "tags": ["check"]}))
    return {
        "cells": cells,
        "metadata": {
            "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
        },
        "nbformat": 4,
        "nbformat_minor": 5,
    }


def v3(nb4: dict) -> dict:
    cells = []
    for c in nb4["cells"]:
        if c["cell_type"] == "code":
            cells.append(
                {
                    "cell_type": "code",
                    "input": c["source"],
                    "language": "python",
                    "metadata": c["metadata"],
                    "outputs": [],
                    "collapsed": False,
                }
            )
        else:
            cells.append({"cell_type": "markdown", "source": c["source"], "metadata": {}})
    return {
        "metadata": {"name": ""},
        "nbformat": 3,
        "nbformat_minor": 0,
        "worksheets": [{"cells": cells, "metadata": {}}],
    }


def wrong(task: str, body: str, extra: str = "") -> str:
    """A function with the task's signature whose body is ``body`` (and ``extra`` above)."""
    head = GOOD[task].split("\n")[0]
    return (extra + "\n" if extra else "") + head + "\n" + body


ALL_WRONG = {t: wrong(t, "    return 0") for t in FN}

CASES: dict[str, dict] = {}


def add(name: str, content, expect: dict, suffix: str = ".json") -> None:
    CASES[name] = {"content": content, "suffix": suffix, "expect": expect}


add("correct", notebook(GOOD), {"total": 7, "status": "ok"})
add("unfilled", notebook({}), {"total": 0, "status": "ok"})
add(
    "wrong",
    notebook(
        {
            "ex01.dense_params": wrong("ex01.dense_params", "    return n_inputs * units"),
            "ex01.conv_params": wrong(
                "ex01.conv_params", "    return kernel_size * in_channels * filters"
            ),
            "ex01.shift_images": wrong(
                "ex01.shift_images", "    return np.roll(x, (dy, dx), axis=(1, 2))"
            ),
        }
    ),
    {"max_total": 1.5, "status": "ok"},
)
add(
    "monkeypatch_numpy",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return 0",
                "np.allclose = lambda *a, **k: True\nnp.isclose = lambda *a, **k: np.True_\n"
                "np.array_equal = lambda *a, **k: True\n"
                "np.testing.assert_allclose = lambda *a, **k: None",
            ),
        }
    ),
    {"total": 0},
)
add(
    "monkeypatch_builtins",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return 0",
                "import builtins\nbuiltins.isinstance = lambda *a: True\n"
                "builtins.abs = lambda x: 0\n"
                "builtins.len = lambda x: 0\nbuiltins.print = lambda *a, **k: None",
            ),
        }
    ),
    {"total": 0},
)
add(
    "monkeypatch_sys_modules",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return 0",
                "import sys, types\nfake = types.ModuleType('checking')\n"
                "fake.compare = lambda *a, **k: None\n"
                "sys.modules['cnn' + 'course.checking'] = fake\n"
                "sys.modules['numpy'].allclose = lambda *a, **k: True",
            ),
        }
    ),
    {"total": 0},
)
add(
    "monkeypatch_checker",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return 0",
                "import cnncourse.checking as c\nc.compare = lambda *a, **k: None\n"
                "c.Task.compare = lambda *a, **k: None",
            ),
        }
    ),
    {"total": 0, "reason": ["imports the course package"]},
)
add(
    "returns_cheating_objects",
    notebook(
        {
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return Any()",
                "class Any:\n    def __eq__(self, other):\n        return True\n"
                "    def __ne__(self, other):\n        return False",
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    return Int(0)",
                "class Int(int):\n    def __eq__(self, other):\n        return True",
            ),
            "ex01.shift_images": wrong(
                "ex01.shift_images",
                "    return Arr(np.zeros(1))",
                "class Arr(np.ndarray):\n    def __new__(cls, a):\n"
                "        return np.asarray(a).view(cls)\n"
                "    def __eq__(self, other):\n        return np.True_\n"
                "    shape = property(lambda self: (1, 1, 1))",
            ),
        }
    ),
    {"total": 0},
)
add(
    "hardcoded_public",
    notebook(
        {
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return {(784, 100): 78500, (784, 10): 7850, (150528, 100): 15052900}"
                "[(n_inputs, units)]",
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    return {(3, 1, 32): 320, (3, 32, 64): 18496, (5, 3, 6): 456}"
                "[(kernel_size, in_channels, filters)]",
            ),
            "ex01.shift_images": wrong(
                "ex01.shift_images",
                "    if x.shape != (2, 5, 5):\n        return np.zeros_like(x)\n"
                + GOOD["ex01.shift_images"].split("\n", 1)[1],
            ),
        }
    ),
    {"hidden_passed": 0, "max_total": 3.7},
)
add(
    "infinite_loop",
    notebook(
        {**GOOD, "ex01.dense_params": wrong("ex01.dense_params", "    while True:\n        pass")}
    ),
    {"total": 5, "status": "error", "reason": ["ex01.dense_params: timed out"]},
)
add(
    "sys_exit",
    notebook(
        {**GOOD, "ex01.conv_params": wrong("ex01.conv_params", "    import sys\n    sys.exit(0)")}
    ),
    {"total": 5, "status": "ok"},
)
add(
    "os_exit",
    notebook(
        {**GOOD, "ex01.dense_params": wrong("ex01.dense_params", "    import os\n    os._exit(0)")}
    ),
    {"total": 5, "status": "error", "reason": ["ex01.dense_params: ended the grading process"]},
)
add(
    "segfault",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong(
                "ex01.dense_params", "    import ctypes\n    return ctypes.string_at(0)"
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params", "    import faulthandler\n    faulthandler._sigsegv()"
            ),
        }
    ),
    {"total": 3, "status": "error", "reason": ["SIGSEGV"]},
)
add(
    "memory_bomb",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    hog = []\n    while True:\n        hog.append(bytearray(50 * 2**20))",
            ),
            "ex01.conv_params": wrong("ex01.conv_params", "    return np.ones(10**11).sum()"),
        }
    ),
    {"total": 3},
)
add(
    "fork_bomb",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong(
                "ex01.dense_params", "    import os\n    while True:\n        os.fork()"
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    import subprocess\n    subprocess.run(['sh', '-c', ':(){ :|:& };:'])\n"
                "    return 0",
            ),
        }
    ),
    {"total": 3},
)
add(
    "output_flood",
    notebook(
        {
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    import os, sys\n    for _ in range(200):\n        print('x' * 100_000)\n"
                "        sys.stderr.write('y' * 100_000)\n    os.write(1, b'z' * 10**6)\n"
                "    return 0",
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    import os\n    for fd in range(3, 64):\n        try:\n"
                "            os.write(fd, b'{\"ev\": \"case\"' + b'x' * 10**6 + b'\\n"
                "' + b'garbage\\n' * 1000)\n"
                "        except OSError:\n            pass\n    return 0",
            ),
            "ex01.shift_images": wrong("ex01.shift_images", "    return np.zeros((8000, 8000))"),
        }
    ),
    {"total": 0},
)
add(
    "huge_file_write",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    with open('big.bin', 'wb') as f:\n        for _ in range(1000):\n"
                "            f.write(b'0' * 2**20)\n    return 0",
            ),
        }
    ),
    {"total": 0},
)
add(
    "protocol_forgery",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    import os, json\n    for fd in range(3, 64):\n        for k in range(6):\n"
                "            try:\n"
                "                os.write(fd, (json.dumps({'ev': 'case', 'task': 0, "
                "'case': k, 'value': 78500, 'passed': True}) + '\\n').encode())\n"
                "            except OSError:\n                pass\n    return 0",
            ),
        }
    ),
    {"total": 0, "status": "error", "reason": ["private channel"]},
)
add(
    "close_fds",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return n_inputs * units + units",
                "import os\nos.closerange(3, 256)",
            ),
        }
    ),
    {"total": 5, "status": "error"},
)
add(
    "syntax_error",
    notebook(
        {**GOOD, "ex01.dense_params": wrong("ex01.dense_params", "    return n_inputs * units +")}
    ),
    {"total": 5, "status": "error", "reason": ["syntax error on line"]},
)
add(
    "import_ops",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return ops.dense_param_count(n_inputs, units)",
                "from cnncourse import ops",
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    from cnncourse.ops import conv_param_count\n"
                "    return conv_param_count(kernel_size, in_channels, filters)",
            ),
            "ex01.shift_images": wrong(
                "ex01.shift_images",
                "    import importlib\n    importlib.import_module('cnncourse.tasks.ex01')\n"
                "    return x",
            ),
        }
    ),
    {"total": 0, "status": "error", "reason": ["imports the course package"]},
)
add(
    "import_tasks",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    return ex01._dense_params(n_inputs, units)",
                "from cnncourse.tasks import ex01",
            ),
        }
    ),
    {"total": 0, "status": "error", "reason": ["imports the course package"]},
)
add(
    "dunder_import",
    notebook(
        {
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    ops = __import__('cnncourse').ops\n"
                "    return ops.dense_param_count(n_inputs, units)",
            ),
            "ex01.conv_params": wrong(
                "ex01.conv_params",
                "    name = ''.join(['cnn', 'cour', 'se.ops'])\n"
                "    ops = __import__(name, fromlist=['x'])\n"
                "    return ops.conv_param_count(kernel_size, in_channels, filters)",
            ),
            "ex01.shift_images": wrong(
                "ex01.shift_images",
                "    import sys\n    sys.path.insert(0, '/work/main')\n"
                "    mod = getattr(__builtins__, '__im' + 'port__', None) or __builtins__['__im' "
                "+ 'port__']\n"
                "    return mod('cnn' + 'course.tasks.ex01', fromlist=['x'])._shift_images(x, dx, "
                "dy)",
            ),
        }
    ),
    {"total": 0, "status": "error", "reason": ["cnncourse"]},
)
add(
    "read_solutions",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    import glob, os, json\n    from pathlib import Path\n"
                "    roots = [Path(np.__file__).resolve().parents[k] for k in range(3, 7)]\n"
                "    roots.append(Path('/work/main'))\n"
                "    for root in roots:\n"
                "        for p in glob.glob(str(root / 'solutions' / 'ex01*.ipynb')) + \\\n"
                "                glob.glob(str(root / 'cnncourse' / 'tasks' / 'ex01.py')):\n"
                "            try:\n                text = open(p).read()\n"
                "            except OSError:\n                continue\n"
                "            if 'def _dense_params' in text:\n"
                "                return n_inputs * units + units\n"
                "    return 0",
            ),
        }
    ),
    {"total": 0},
)
add(
    "network_socket",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    import socket\n    s = socket.create_connection(('1.1.1.1', 53), timeout=2)\n"
                "    s.close()\n    return n_inputs * units + units",
            ),
        }
    ),
    {"total": 0},
)
add(
    "deleted_task_cells",
    notebook({}, drop=tuple(FN)),
    {"total": 0, "status": "error", "reason": ["task cell missing"]},
)
add(
    "edited_check_cells",
    notebook(
        {},
        checks={
            "ex01.dense_params": "check = lambda *a, **k: print('PASS')\nprint('2/2 points')",
            "ex01.conv_params": "",
            "ex01.shift_images": "import cnncourse.checking\n"
            "cnncourse.checking.compare = lambda *a: None",
        },
    ),
    {"total": 0, "status": "ok"},
)
add("stripped_metadata_correct", notebook(GOOD, task_meta=False), {"total": 7, "status": "ok"})
add("nbformat_v3_correct", v3(notebook(GOOD)), {"total": 7, "status": "ok"})
add(
    "nbformat_v2",
    {"nbformat": 2, "worksheets": "nonsense"},
    {"total": 0, "status": "error", "reason": ["malformed notebook"]},
)
add(
    "malformed_json",
    json.dumps(notebook(GOOD))[:-200],
    {"total": 0, "status": "error", "reason": ["malformed notebook"]},
)
add(
    "json_bomb",
    "[" * 100_000 + "]" * 100_000,
    {"total": 0, "status": "error", "reason": ["malformed notebook"]},
)
add(
    "not_a_notebook",
    b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4,
    {"total": 0, "status": "error", "reason": ["malformed notebook"]},
)
non_utf8 = (
    json.dumps(
        notebook(
            {
                **ALL_WRONG,
                "ex01.dense_params": wrong("ex01.dense_params", "    return len('NONUTF8')"),
            }
        )
    )
    .encode()
    .replace(b"NONUTF8", b"\xff\xfe\xe9t\xe9")
)
add("non_utf8", non_utf8, {"total": 0, "status": "ok", "note": "not valid UTF-8"})


# --- issue 12: the process boundary (tests/test_sandbox.py covers each without the audit hook)
_TO_PARENT = (
    "import os, stat\n"
    "def _to_parent(payload):\n"
    "    for fd in range(3, 64):\n"
    "        try:\n"
    "            if stat.S_ISSOCK(os.fstat(fd).st_mode):\n"
    "                view = memoryview(payload)\n"
    "                while view:\n"
    "                    view = view[os.write(fd, view):]\n"
    "        except OSError:\n"
    "            pass"
)


def _wire_attack(payload: str) -> dict:
    body = f"    _to_parent({payload})\n    return n_inputs * units + units"
    return notebook({**GOOD, "ex01.dense_params": wrong("ex01.dense_params", body, _TO_PARENT)})


add("wire_deep_nesting", _wire_attack("b'[' * 200_000 + b'\\n'"), {"max_total": 5})
add("wire_newline_flood", _wire_attack("b'\\n' * (768 * 1024)"), {"max_total": 5})
add("wire_24mb_line", _wire_attack("b'[' + b'[],' * (8 * 2**20) + b']\\n'"), {"max_total": 5})
add(
    "surrogate_message",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong("ex01.dense_params", "    raise ValueError('\\ud800')"),
        }
    ),
    {"total": 5},
)
add(
    "rmdir_cwd",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": "import os\nos.rmdir(os.getcwd())\n" + GOOD["ex01.dense_params"],
        }
    ),
    {"max_total": 7},
)
add(
    "fill_tmp",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": "for k in range(1000):\n"
            "    try:\n"
            "        with open(f'/tmp/fill{k}', 'wb') as fh:\n"
            "            for _ in range(16):\n"
            "                fh.write(b'x' * 2**20)\n"
            "    except OSError:\n"
            "        break\n" + GOOD["ex01.dense_params"],
        }
    ),
    {"max_total": 7},
)
add(
    "signal_grader",
    notebook(
        {
            **ALL_WRONG,
            "ex01.dense_params": wrong(
                "ex01.dense_params",
                "    import os, signal\n"
                "    for pid in (os.getppid(), 1, -1):\n"
                "        try:\n"
                "            os.kill(pid, signal.SIGSTOP)\n"
                "        except Exception:\n"
                "            pass\n"
                "    return n_inputs * units + units",
            ),
        }
    ),
    {"max_total": 2},
)
add(
    "hidden_inputs_in_message",
    notebook(
        {
            **GOOD,
            "ex01.dense_params": wrong(
                "ex01.dense_params", "    raise ValueError(f'LEAK {n_inputs} {units}')"
            ),
        }
    ),
    {"total": 5},
)


def main() -> None:
    manifest = {}
    for name, spec in CASES.items():
        path = HERE / f"{name}{spec['suffix']}"
        content = spec["content"]
        if isinstance(content, dict):
            path.write_text(json.dumps(content, indent=1) + "\n", encoding="utf-8")
        elif isinstance(content, str):
            path.write_text(content, encoding="utf-8")
        else:
            path.write_bytes(content)
        manifest[path.name] = spec["expect"]
    manifest["huge_file.json"] = {
        "generated": "21 MB of JSON, written by the test (too big to commit)",
        "total": 0,
        "status": "error",
        "reason": ["file too large"],
    }
    template = copy.deepcopy(notebook({}))
    (HERE / "template_ex01.json").write_text(json.dumps(template, indent=1) + "\n")
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")


if __name__ == "__main__":
    main()
