"""The one place Keras is imported: TensorFlow is the default backend, ``KERAS_BACKEND=jax`` or ``torch`` work too."""

from __future__ import annotations

import importlib.util
import os
from types import ModuleType


def import_keras() -> ModuleType:
    """Import Keras with TensorFlow as the default backend and TensorFlow's C++ start-up chatter silenced."""
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import keras

    return keras


def backend_name() -> str:
    """The Keras backend in use (``tensorflow``, ``jax`` or ``torch``)."""
    return import_keras().backend.backend()


def has_tensorflow() -> bool:
    """True when TensorFlow is installed (tf.data is then used for input, whatever the Keras backend)."""
    return importlib.util.find_spec("tensorflow") is not None
