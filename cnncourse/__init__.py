"""cnncourse: the helper package of the *cnncourse* book on convolutional neural networks.

The package is small on purpose: one module per concern, each introduced by the chapter
that motivates it and reused by the chapters after it.

- :mod:`cnncourse.datasets` -- MNIST, Fashion-MNIST, a synthetic lines dataset and sample
  photos, with honest offline fallbacks (chapter 1).
- :mod:`cnncourse.ops` -- reference NumPy layers, a naive and a fast version of each
  (chapters 2 and 3).
- :mod:`cnncourse.models` and :mod:`cnncourse.viz` -- the Keras models and the figures the
  chapters share (chapter 4 onwards).
- :mod:`cnncourse.architectures` and :mod:`cnncourse.pretrained` -- classic architectures,
  their blocks and costs, and ImageNet VGG16 from the Keras cache or the network, never
  faked (chapter 6).
- :mod:`cnncourse.interpret` -- activations, Grad-CAM, saliency sanity checks and
  confusion-matrix helpers (chapter 7).
- :mod:`cnncourse.inference` and :mod:`cnncourse.serve` -- validated inference with the
  training preprocessing, and a FastAPI prediction endpoint (chapter 9).
- :mod:`cnncourse.dense`, :mod:`cnncourse.scenes` and :mod:`cnncourse.dense_models` --
  IoU, non-maximum suppression, Dice, transposed-convolution sizes, generated scenes with
  masks and boxes, signals, a small U-Net and a grid detector (chapter 10).
- :mod:`cnncourse.checking` and :mod:`cnncourse.tasks` -- the in-notebook self-checks of
  the exercises; :mod:`cnncourse.assign` makes the student versions and
  :mod:`cnncourse.grading` grades a class.
"""

__version__ = "0.1.0"
