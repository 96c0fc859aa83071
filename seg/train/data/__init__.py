"""The training data: scanning and checking mask folders, input normalisation, augmentation and the ``tf.data``
pipeline.

Importing this package does not import TensorFlow; :func:`make_dataset` does. Without TensorFlow (or with
``SEG_INPUT=numpy``) it returns a Keras ``PyDataset`` of the same epochs built with numpy, for the jax and torch
backends.

Example:
    >>> scan = scan_folder("masks_out", validation_split=0.1)  # doctest: +SKIP
    >>> normalization = normalization_for(scan)  # doctest: +SKIP
    >>> train = make_dataset(scan.train, size=(256, 256), normalization=normalization, batch_size=8,  # doctest: +SKIP
    ...                      training=True, augment=Augment(), epochs=20, mask_scale=scan.mask_scale, bands=scan.bands)
"""

from seg.train.data.augment import Augment
from seg.train.data.pipeline import epoch_order, input_pipeline, make_dataset, steps_per_epoch
from seg.train.data.probe import read_label
from seg.train.data.scan import FolderScan, Sample, scan_folder
from seg.train.data.statistics import band_statistics, normalization_for

__all__ = [
    "Augment",
    "FolderScan",
    "Sample",
    "band_statistics",
    "epoch_order",
    "input_pipeline",
    "make_dataset",
    "normalization_for",
    "read_label",
    "scan_folder",
    "steps_per_epoch",
]
