"""``seg predict``'s Dataset goes to a real Label Studio server as pre-annotations and comes back mask for mask."""

from __future__ import annotations

import numpy as np
from PIL import Image

from seg.annotate.client import connect
from seg.annotate.pull import pull
from seg.annotate.push import push, read_predictions
from seg.train.predict import predict_images
from seg.train.spec import ModelSpec
from tests.train.folders import scene
from tests.train.runs import write_untrained_run

CLASSES = ["background", "building", "road"]


def test_predictions_of_a_run_are_pushed_and_pulled_back_exactly(label_studio, tmp_path):
    folder = label_studio.document_root / "model"
    folder.mkdir()
    rng = np.random.default_rng(11)
    for name in ("a.png", "b.png"):
        Image.fromarray(scene(rng, (32, 48), 3)[0]).save(folder / name)
    run = write_untrained_run(tmp_path / "run", ModelSpec("unet_small", None, 32, 32, 3, 3), CLASSES, seed=5)
    predict_images(run, folder, tmp_path / "pred", min_area=0)
    predicted = read_predictions(tmp_path / "pred" / "dataset", None, folder)
    assert len(predicted.objects) > 0 and predicted.objects["score"].between(0, 1).all()

    with connect(label_studio.url, label_studio.api_key) as client:
        report = push(
            client, folder, project="model predictions", classes=CLASSES[1:], tool="brush", predictions=predicted
        )
        back = pull(client, report["project"], which="predictions", image_root=folder)

    assert report["predictions_added"] == 2
    for name in ("a.png", "b.png"):
        expected = np.asarray(Image.open(tmp_path / "pred" / "masks" / name))
        got = np.zeros_like(expected)
        rows = np.flatnonzero(back.objects["file_name"].to_numpy() == name)
        for i in rows:
            got[back.object_mask(int(i)).astype(bool)] = CLASSES.index(back.objects["category"].iloc[i])
        np.testing.assert_array_equal(got, expected, err_msg=name)
    assert sorted(back.objects["score"].round(6)) == sorted(predicted.objects["score"].round(6))
