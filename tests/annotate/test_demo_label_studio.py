"""``seg demo`` with a Label Studio server: the sample goes up as pre-annotations and comes back."""

from __future__ import annotations

from seg.demo import DEMO_PROJECT, run_demo


def test_demo_pushes_the_sample_and_pulls_it_back(label_studio):
    out = label_studio.document_root / "demo"  # inside the server's document root: images are served, not uploaded
    report = run_demo(out, label_studio=(label_studio.url, label_studio.api_key), train=False)
    server = report["annotation_tools"]["label_studio_server"]
    assert server["project"] == DEMO_PROJECT
    assert server["pushed"]["tasks_added"] == report["images"] == 36
    # every object comes back as a prediction region (objects cut into parts by a tile border come back as parts)
    assert server["pulled_objects"] >= sum(report["objects"].values())
    again = run_demo(out, overwrite=True, label_studio=(label_studio.url, label_studio.api_key), train=False)
    assert again["annotation_tools"]["label_studio_server"]["pushed"]["tasks_added"] == 0  # no duplicate tasks
