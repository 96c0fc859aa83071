"""Training Keras segmentation models on seg's mask folders: models, input pipeline, ``seg train``, ``predict``,
``evaluate``.

Nothing here imports Keras at module import time except the modules that build or run models; the CLI stays fast.
"""
