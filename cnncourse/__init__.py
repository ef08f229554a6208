"""cnncourse: the helper package of the *cnncourse* book on convolutional neural networks.

The package is small on purpose: one module per concern, each introduced by the chapter
that motivates it and reused by the chapters after it.

- :mod:`cnncourse.datasets` -- MNIST, Fashion-MNIST, a synthetic lines dataset and sample
  photos, with honest offline fallbacks (chapter 1).
- :mod:`cnncourse.checking` -- the in-notebook self-checks of the exercises.
"""

__version__ = "0.1.0"
