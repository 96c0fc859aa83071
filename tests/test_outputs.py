import os

import pytest

from seg.errors import OutputExistsError
from seg.outputs import atomic_dir, atomic_file


def test_atomic_file_replaces_only_on_success(tmp_path):
    target = tmp_path / "out.json"
    target.write_text("old")
    with pytest.raises(OutputExistsError), atomic_file(target, mode="w") as f:
        f.write("new")
    with pytest.raises(RuntimeError), atomic_file(target, overwrite=True, mode="w") as f:
        f.write("half")
        raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]
    with atomic_file(target, overwrite=True, mode="w") as f:
        f.write("new")
    assert target.read_text() == "new"


def test_atomic_dir(tmp_path):
    target = tmp_path / "d"
    with atomic_dir(target) as tmp:
        (tmp / "a").write_text("1")
    with pytest.raises(RuntimeError), atomic_dir(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
        raise RuntimeError("interrupted")
    assert [p.name for p in target.iterdir()] == ["a"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["d"]
    with atomic_dir(target, overwrite=True) as tmp:
        (tmp / "b").write_text("2")
    assert [p.name for p in target.iterdir()] == ["b"]


def test_outputs_get_the_umask_mode_not_0600(tmp_path):
    with atomic_file(tmp_path / "f.txt", mode="w") as f:
        f.write("x")
    with atomic_dir(tmp_path / "d"):
        pass
    old = os.umask(0o022)
    os.umask(old)
    assert (tmp_path / "f.txt").stat().st_mode & 0o777 == 0o666 & ~old
    assert (tmp_path / "d").stat().st_mode & 0o777 == 0o777 & ~old
