import pytest

from seg.dataset.store import is_dataset_dir, load_dataset, save_dataset
from seg.errors import FormatError, OutputExistsError
from tests.dataset.test_core import make_dataset


def test_save_load_round_trip(tmp_path):
    ds = make_dataset(attributes='{"occluded": true}')
    save_dataset(ds, tmp_path / "ds")
    assert is_dataset_dir(tmp_path / "ds")
    back = load_dataset(tmp_path / "ds")
    assert back.equals(ds)
    assert back.categories[1].supercategory == "way"


def test_existing_output_untouched_without_overwrite(tmp_path):
    save_dataset(make_dataset(), tmp_path / "ds")
    before = {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()}
    with pytest.raises(OutputExistsError, match="--overwrite"):
        save_dataset(make_dataset(), tmp_path / "ds")
    assert {p.name: p.read_bytes() for p in (tmp_path / "ds").iterdir()} == before
    save_dataset(make_dataset(), tmp_path / "ds", overwrite=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ds"]


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "categories.json").write_text("{not json"), "unreadable dataset folder"),
        (lambda d: (d / "objects.parquet").write_bytes(b"PAR1 truncated"), "unreadable dataset folder"),
        (lambda d: (d / "images.parquet").unlink(), "not a seg dataset folder"),
        (lambda d: (d / "categories.json").write_text('{"categories": [{"id": 1}]}'), "unreadable dataset folder"),
    ],
)
def test_broken_folders(tmp_path, damage, message):
    save_dataset(make_dataset(), tmp_path / "ds")
    damage(tmp_path / "ds")
    with pytest.raises(FormatError, match=message) as info:
        load_dataset(tmp_path / "ds")
    assert str(tmp_path / "ds") in str(info.value)
