"""Keras writes ~/.keras/keras.json on first import: point it at a temporary folder for the whole test session; a
SEG_INPUT from the shell must not switch the input pipeline under the tests."""

from __future__ import annotations

import os
import tempfile

os.environ.setdefault("KERAS_HOME", tempfile.mkdtemp(prefix="seg-keras-home-"))
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.pop("SEG_INPUT", None)  # the tests choose the input pipeline themselves
