"""PNG mask folders: images beside single-channel label masks, the layout segmentation trainers read.

Layout written by :func:`save` (and read by :func:`load`)::

    out/images/<file_name>            the image, copied, linked, or left out (``images=``)
    out/masks/<file_name stem>.png    its mask: same relative path and base name (``a/b/x.jpg`` -> ``a/b/x.png``)
    out/classes.json                  {"0": "background", "1": "building", ...}
    out/classes.txt                   the same names one per line, line i = class index i (keras-segmentation users)
    out/dataset_meta.json             {"label_map": {...}, "background_label": "0"} (Datumaro's common format)
    out/instances.json                instance masks only: {"masks/x.png": [{"id", "category", "source_id", "iscrowd"}]}

With ``split`` the images and masks go to ``out/train/{images,masks}`` and ``out/test/{images,masks}`` (the
keras-segmentation layout); the class map stays at ``out/``.

Semantic masks (``kind="semantic"``) hold the class index of :meth:`Dataset.class_index` in each pixel, 0 =
background: 8-bit greyscale (mode ``L``), or 16-bit (``I;16``) when there are more than 255 classes. Never RGB, never
a palette, never 0/255. Objects are painted largest first (ties in object order), so a small object lying on a large
one stays visible; crowd objects are painted like the others. Instance masks (``kind="instance"``) are 16-bit with
0 = background and ids 1..K in the image's object order (same paint order), described in ``instances.json``.
Box-only objects are skipped by default and counted in the report (``boxes="paint"`` paints their boxes instead).
Images without objects get an all-background mask.

Reading accepts that layout and its near relatives: masks that are 8- or 16-bit greyscale or palette-indexed PNGs
(the palette index is the class), class maps from ``classes.json``, Datumaro's ``dataset_meta.json`` (``label_map``),
Datumaro's Kaggle ``labelmap.csv`` (``name[,r,g,b]``, row i = class i) or ``classes.txt``; colour (RGB) masks only
with a colour map (``segmentation_colors`` in ``dataset_meta.json`` or ``r,g,b`` in ``labelmap.csv``), or when all
three channels are equal (a greyscale mask saved as RGB). Without a class map, class names are the pixel values
(``"1"``, ``"2"``, ...). A semantic mask becomes one object per class present in the image; an instance mask (a folder
with ``instances.json``) one object per instance.
"""

from __future__ import annotations

from pathlib import Path

from seg.formats.masks_read import find_layouts, load_masks
from seg.formats.masks_write import save_masks

__all__ = ["detect", "load", "save"]


def detect(path: Path) -> bool:
    """True for a folder holding ``images/`` and ``masks/``, or split folders (``train/``, ``test/``...) that do."""
    return Path(path).is_dir() and bool(find_layouts(Path(path)))


load = load_masks
save = save_masks
