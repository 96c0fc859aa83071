"""seg: image-segmentation datasets from raw pixels to a trained model.

The notebook API::

    import seg
    ds = seg.read("instances_val.json")           # any known format, detected
    ds.to_frame()                                 # one row per object, COCO-merge style
    seg.write(ds, "masks_out", "masks")           # any registered format
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["Category", "Dataset", "SegError", "__version__", "read", "write"]


def __getattr__(name: str) -> Any:
    # Lazy so that `seg --help` does not import pandas.
    if name in ("Dataset", "Category"):
        from seg.dataset import core

        return getattr(core, name)
    if name in ("read", "write"):
        from seg import formats

        return getattr(formats, name)
    if name == "SegError":
        from seg.errors import SegError

        return SegError
    raise AttributeError(f"module 'seg' has no attribute {name!r}")
