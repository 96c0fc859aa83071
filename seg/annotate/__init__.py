"""Live sync with a Label Studio server: push images and predictions to a project, pull annotations back.

:func:`~seg.annotate.client.connect` opens a checked connection, :func:`~seg.annotate.push.push` and
:func:`~seg.annotate.pull.pull` move data each way, :func:`~seg.annotate.doctor.doctor` says what is wrong with a
setup. The Label Studio SDK is imported only when a function needs it (``pip install 'seg[labelstudio]'``).
"""

from __future__ import annotations
