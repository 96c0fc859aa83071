import numpy as np
import pytest
from PIL import Image

from seg.dataset.images import image_size, read_image
from seg.dataset.paths import inside, normalize_file_name
from seg.errors import ImageError, UnsafePathError


@pytest.mark.parametrize(
    ("name", "expected"),
    [("a.png", "a.png"), ("sub\\dir\\a.png", "sub/dir/a.png"), ("./x/./a.jpg", "x/a.jpg"), ("x/../a.jpg", "a.jpg")],
)
def test_normalize(name, expected):
    assert normalize_file_name(name) == expected


@pytest.mark.parametrize("name", ["/etc/passwd", "C:\\x\\a.png", "\\\\host\\share\\a.png", "../a.png", "a/../../b", ""])
def test_unsafe_names(name):
    with pytest.raises(UnsafePathError) as info:
        normalize_file_name(name, source="ann.json", item_id="image 7")
    assert "ann.json: item image 7" in str(info.value)


def test_inside(tmp_path):
    assert inside(tmp_path, "a/b.png") == tmp_path / "a" / "b.png"
    with pytest.raises(UnsafePathError, match="leaves"):
        inside(tmp_path, "../x.png")


def test_image_size_and_read(tmp_path):
    Image.fromarray(np.full((5, 7, 3), 9, np.uint8)).save(tmp_path / "a.png")
    assert image_size(tmp_path / "a.png") == (7, 5)
    assert read_image(tmp_path / "a.png").shape == (5, 7, 3)


def test_decompression_bomb_refused_before_decoding(tmp_path):
    Image.new("L", (4000, 4000)).save(tmp_path / "big.png")
    with pytest.raises(ImageError, match="decompression bomb") as info:
        read_image(tmp_path / "big.png", max_pixels=1_000_000)
    assert "4000x4000" in str(info.value)


def test_not_an_image_and_truncated(tmp_path):
    (tmp_path / "page.jpg").write_text("<html>not an image</html>")
    with pytest.raises(ImageError, match="not a readable image"):
        image_size(tmp_path / "page.jpg")
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(tmp_path / "t.png")
    data = (tmp_path / "t.png").read_bytes()
    (tmp_path / "t.png").write_bytes(data[: len(data) // 2])
    with pytest.raises(ImageError, match="truncated or corrupt"):
        read_image(tmp_path / "t.png")
    with pytest.raises(ImageError, match="not found"):
        image_size(tmp_path / "missing.png")


def test_pillow_bomb_error_becomes_image_error(tmp_path):
    # above Pillow's own limit (2 x 89.5 M pixels) Pillow raises before seg's check: still a one-line ImageError
    Image.new("1", (20000, 10000)).save(tmp_path / "huge.png")
    with pytest.raises(ImageError, match="decompression bomb"):
        image_size(tmp_path / "huge.png")
