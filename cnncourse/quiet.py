"""Import TensorFlow without the C++ log lines it prints while it loads.

TensorFlow 2.21 writes lines such as ``WARNING: All log messages before
absl::InitializeLog() is called are written to STDERR``, ``oneDNN custom operations are
on ...`` and ``Could not find cuda drivers on your machine ...`` to the process's standard
error while its shared libraries load, before its logging is set up, so
``TF_CPP_MIN_LOG_LEVEL`` does not silence them. In JupyterLab they appear in red under the
first cell of every notebook and look like errors; they are not (the course runs on CPUs).

:func:`import_tensorflow` is what the first cell of every chapter and exercise calls,
before anything imports TensorFlow or Keras: it imports TensorFlow once with the operating
system's standard error (file descriptor 2) sent to ``/dev/null``, then restores it, so
every later warning and error is shown as usual. Only the loading is silenced; nothing
else is hidden.
"""

from __future__ import annotations

import os
import sys
from types import ModuleType

__all__ = ["import_tensorflow"]


def import_tensorflow() -> ModuleType:
    """Import TensorFlow without its start-up log lines; return the module.

    Sets ``TF_CPP_MIN_LOG_LEVEL=3`` unless it is set already (TensorFlow's C++ logs after
    start-up), then imports :mod:`tensorflow` with file descriptor 2 (standard error)
    redirected to ``/dev/null``. If TensorFlow is already imported, nothing is redirected
    and the loaded module is returned.

    Returns
    -------
    module
        The :mod:`tensorflow` module.

    Examples
    --------
    >>> from cnncourse.quiet import import_tensorflow
    >>> tf = import_tensorflow()
    >>> tf.__name__
    'tensorflow'
    >>> import_tensorflow() is tf
    True
    """
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    loaded = sys.modules.get("tensorflow")
    if loaded is not None:
        return loaded
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, OSError, ValueError):  # a closed or unusual stream
            pass
    try:
        saved = os.dup(2)
    except OSError:  # no file descriptor 2 (an embedded interpreter): import as usual
        import tensorflow

        return tensorflow
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        import tensorflow
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
    return tensorflow
