"""Tile cache reading: every layout, detection, .tne markers, databases, hostile input, the real SAS.Planet cache."""

from __future__ import annotations

import math
import re
import sqlite3
from pathlib import Path, PurePosixPath

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.collector.cache import LAYOUT_NAMES, open_cache, sqlite_path
from seg.collector.cache_layouts import LAYOUTS, parse, tile_path
from seg.collector.tiles import Tile, tile_bounds
from seg.errors import OptionError, SegError

TILES = [
    Tile(0, 0, 0),
    Tile(1, 0, 1),
    Tile(2, 3, 2),
    Tile(5, 9, 4),
    Tile(40, 17, 6),
    Tile(700, 300, 10),
    Tile(1500, 2100, 12),
]
MISSING = Tile(3, 3, 2)
#: Layouts whose ``{z}/{a}/{b}`` shape detection cannot tell from Mobile Atlas Creator's.
AMBIGUOUS = {"gmt_plain", "tms"}


def png(tile: Tile, version: int = 0) -> bytes:
    return b"\x89PNG\r\n\x1a\n" + f"{tile.z}/{tile.x}/{tile.y}/v{version}".encode()


def ext_of(layout: str) -> str:
    return ".png.tile" if layout == "osmand" else ".png"


def write_file_cache(map_dir: Path, layout: str) -> None:
    for tile in TILES:
        path = map_dir / tile_path(layout, tile, ext_of(layout))
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(png(tile))
    marker = map_dir / tile_path(layout, MISSING, ".tne")
    marker.parent.mkdir(parents=True, exist_ok=True)
    marker.write_bytes(b"")
    (map_dir / "Thumbs.db").write_bytes(b"junk")
    (map_dir / "notes.txt").write_text("not a tile")


def test_known_paths() -> None:
    assert tile_path("sas", Tile(1500, 2100, 12), ".jpg") == PurePosixPath("z13/1/x1500/2/y2100.jpg")
    assert tile_path("googlemv", Tile(2, 3, 2), ".jpg") == PurePosixPath("03/tst.jpg")
    assert tile_path("googlemv", Tile(0, 0, 0), ".jpg") == PurePosixPath("01/t.jpg")
    assert tile_path("earthslicer", Tile(5, 9, 4), ".jpg") == PurePosixPath("05/05-05-09.jpg")
    assert tile_path("earthslicer", Tile(40, 17, 6), ".jpg") == PurePosixPath("07/B10/07-40-17.jpg")
    assert tile_path("earthslicer", Tile(700, 300, 10), ".jpg") == PurePosixPath("10-350-150/11/F2109/11-0700-0300.jpg")
    assert tile_path("gmt", Tile(5, 9, 4), ".jpg") == PurePosixPath("z4/9/5.jpg")
    assert tile_path("gmt_flat", Tile(5, 9, 4), ".jpg") == PurePosixPath("z4/9_5.jpg")
    assert tile_path("gmt_plain", Tile(5, 9, 4), ".jpg") == PurePosixPath("4/9/5.jpg")
    assert tile_path("mobac", Tile(5, 9, 4), ".jpg") == PurePosixPath("4/5/9.jpg")
    assert tile_path("osmand", Tile(5, 9, 4), ".png.tile") == PurePosixPath("4/5/9.png.tile")
    assert tile_path("tms", Tile(5, 9, 4), ".jpg") == PurePosixPath("4/5/6.jpg")
    assert sqlite_path(Tile(1500, 2100, 12)) == PurePosixPath("z13/1/2/5.8.sqlitedb")


@st.composite
def tiles(draw: st.DrawFn) -> Tile:
    z = draw(st.integers(0, 23))
    return Tile(draw(st.integers(0, 2**z - 1)), draw(st.integers(0, 2**z - 1)), z)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
@given(tile=tiles())
def test_path_parse_round_trip(layout: str, tile: Tile) -> None:
    ext = ext_of(layout)
    assert parse(layout, tile_path(layout, tile, ext)) == (tile, ext)
    assert parse(layout, tile_path(layout, tile, ".tne")) == ((tile, ".tne") if layout != "osmand" else None)


@pytest.mark.parametrize(
    ("layout", "rel"),
    [
        ("sas", "z3/0/x007/0/y1.jpg"),  # leading zeros
        ("sas", "z3/1/x0/0/y1.jpg"),  # wrong block folder
        ("sas", "z3/0/x0/0/y1.txt"),  # not an image extension
        ("sas", "z0/0/x0/0/y0.jpg"),  # zoom folder 0 would be zoom -1
        ("googlemv", "03/tqx.jpg"),
        ("googlemv", "04/tqr.jpg"),  # zoom folder disagrees with the letters
        ("mobac", "2/../1.png"),
        ("osmand", "2/1/1.png"),
        ("gmt_flat", "z2/1-1.png"),
        ("earthslicer", "05/05-5-09.jpg"),
        ("tms", "40/1/1.png"),
    ],
)
def test_parse_rejects(layout: str, rel: str) -> None:
    assert parse(layout, PurePosixPath(rel)) is None


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_every_file_layout(tmp_path: Path, layout: str) -> None:
    write_file_cache(tmp_path / "cache" / "Sat", layout)
    write_file_cache(tmp_path / "cache" / "Map", layout)
    cache = open_cache(tmp_path / "cache", layout=layout if layout in AMBIGUOUS else None)
    assert cache.layout == layout
    assert cache.maps == ["Map", "Sat"]
    assert cache.zooms("Sat") == sorted({t.z for t in TILES})
    listed = [t for z in cache.zooms("Sat") for t in cache.tiles("Sat", z)]
    assert sorted(listed) == sorted(TILES)
    for tile in TILES:
        assert cache.read("Sat", tile) == png(tile)
        assert cache.path_of("Sat", tile) == tmp_path / "cache" / "Sat" / tile_path(layout, tile, ext_of(layout))
    assert cache.read("Sat", MISSING) is None
    assert cache.read("Sat", Tile(0, 0, 5)) is None
    assert cache.is_known_missing("Sat", MISSING) is (layout != "osmand")
    assert not cache.is_known_missing("Sat", TILES[0])
    assert PurePosixPath("notes.txt") in cache.skipped("Sat")


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_one_map_folder(tmp_path: Path, layout: str) -> None:
    write_file_cache(tmp_path / "Only", layout)
    cache = open_cache(tmp_path / "Only", layout=layout if layout in AMBIGUOUS else None)
    assert cache.maps == ["Only"]
    assert cache.read("Only", TILES[3]) == png(TILES[3])


def test_ambiguous_layout_defaults_to_mobac(tmp_path: Path) -> None:
    write_file_cache(tmp_path / "m", "tms")
    cache = open_cache(tmp_path)
    assert cache.layout == "mobac"
    # the TMS rows are read as XYZ rows: Tile(2, 3, 2) shows up flipped
    assert cache.read("m", Tile(2, 0, 2)) == png(Tile(2, 3, 2))
    assert open_cache(tmp_path, layout="tms").read("m", Tile(2, 3, 2)) == png(Tile(2, 3, 2))


def test_tne_only_is_not_an_image(tmp_path: Path) -> None:
    write_file_cache(tmp_path / "m", "sas")
    marker = tmp_path / "m" / tile_path("sas", TILES[2], ".tne")
    marker.write_bytes(b"")  # a .tne beside an image: the image wins
    empty = tmp_path / "m" / tile_path("sas", Tile(0, 0, 3), ".jpg")
    empty.parent.mkdir(parents=True, exist_ok=True)
    empty.write_bytes(b"")  # a zero-byte image is no image either
    cache = open_cache(tmp_path)
    assert cache.read("m", TILES[2]) == png(TILES[2])
    assert not cache.is_known_missing("m", TILES[2])
    assert MISSING not in list(cache.tiles("m", 2))
    assert cache.read("m", Tile(0, 0, 3)) is None


def test_errors(tmp_path: Path) -> None:
    with pytest.raises(OptionError, match="unknown cache layout 'bogus'"):
        open_cache(tmp_path, layout="bogus")
    with pytest.raises(SegError, match="tile cache not found"):
        open_cache(tmp_path / "absent")
    (tmp_path / "empty" / "m").mkdir(parents=True)
    (tmp_path / "empty" / "m" / "readme.txt").write_text("x")
    with pytest.raises(SegError, match="no tile cache found"):
        open_cache(tmp_path / "empty")
    (tmp_path / "x.zip").write_bytes(b"PK")
    with pytest.raises(SegError, match="not a tile cache"):
        open_cache(tmp_path / "x.zip")
    write_file_cache(tmp_path / "c" / "m", "sas")
    with pytest.raises(SegError, match="no map 'other'"):
        open_cache(tmp_path / "c").read("other", TILES[0])
    assert set(LAYOUT_NAMES) >= set(LAYOUTS)


def test_symlinks_out_of_the_cache_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    write_file_cache(outside / "z9", "sas")
    secret = outside / "secret.jpg"
    secret.write_bytes(b"secret")
    root = tmp_path / "cache"
    write_file_cache(root / "m", "sas")
    link = root / "m" / tile_path("sas", Tile(1, 1, 3), ".jpg")
    link.parent.mkdir(parents=True, exist_ok=True)
    link.symlink_to(secret)
    (root / "m" / "z8").symlink_to(outside / "z9", target_is_directory=True)
    (root / "evil").symlink_to(outside, target_is_directory=True)
    cache = open_cache(root)
    assert cache.maps == ["m"]
    assert Tile(1, 1, 3) not in list(cache.tiles("m", 3))
    assert cache.read("m", Tile(1, 1, 3)) is None
    assert 7 not in cache.zooms("m")
    assert secret.read_bytes() == b"secret"


# --- SAS SQLite, MBTiles, BerkeleyDB --------------------------------------------------------------------------------


def write_sqlite_cache(map_dir: Path) -> None:
    for tile in TILES:
        path = map_dir / sqlite_path(tile)
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as db:
            db.execute(
                "CREATE TABLE IF NOT EXISTS t (x INTEGER, y INTEGER, v INTEGER, c TEXT, s INTEGER, h INTEGER,"
                " d INTEGER, b BLOB)"
            )
            db.execute("INSERT INTO t VALUES (?, ?, 1, 'image/png', 0, 0, 100, ?)", (tile.x, tile.y, png(tile, 1)))
            db.execute("INSERT INTO t VALUES (?, ?, 3, 'image/png', 0, 0, 300, ?)", (tile.x, tile.y, png(tile, 3)))
            db.execute("INSERT INTO t VALUES (?, ?, 2, 'image/png', 0, 0, 200, ?)", (tile.x, tile.y, png(tile, 2)))
        db.close()
    with sqlite3.connect(map_dir / sqlite_path(MISSING)) as db:
        db.execute("INSERT INTO t VALUES (?, ?, 1, '', 0, 0, 1, NULL)", (MISSING.x, MISSING.y))
    db.close()


def test_sas_sqlite(tmp_path: Path) -> None:
    write_sqlite_cache(tmp_path / "cache" / "Sat")
    cache = open_cache(tmp_path / "cache")
    assert cache.layout == "sqlite"
    assert cache.zooms("Sat") == sorted({t.z for t in TILES})
    assert sorted(t for z in cache.zooms("Sat") for t in cache.tiles("Sat", z)) == sorted(TILES)
    for tile in TILES:
        assert cache.read("Sat", tile) == png(tile, 3)  # newest version wins
    assert cache.read("Sat", MISSING) is None
    assert cache.read("Sat", Tile(0, 0, 7)) is None
    assert cache.path_of("Sat", TILES[-1]) == tmp_path / "cache" / "Sat" / "z13/1/2/5.8.sqlitedb"


def test_corrupt_sqlite_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cache" / "Sat" / sqlite_path(TILES[2])
    path.parent.mkdir(parents=True)
    path.write_bytes(b"this is not a database" * 100)
    cache = open_cache(tmp_path / "cache")
    with pytest.raises(SegError, match="corrupt or foreign SQLite") as info:
        cache.read("Sat", TILES[2])
    assert str(path.name) in str(info.value)
    with pytest.raises(SegError, match=re.escape(path.name)):
        list(cache.tiles("Sat", 2))


def write_mbtiles(path: Path, scheme: str | None) -> None:
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE tiles (zoom_level INTEGER, tile_column INTEGER, tile_row INTEGER, tile_data BLOB)")
        if scheme is not None:
            db.execute("CREATE TABLE metadata (name TEXT, value TEXT)")
            db.execute("INSERT INTO metadata VALUES ('scheme', ?)", (scheme,))
        for tile in TILES:
            row = tile.y if scheme == "xyz" else 2**tile.z - 1 - tile.y
            db.execute("INSERT INTO tiles VALUES (?, ?, ?, ?)", (tile.z, tile.x, row, png(tile)))
    db.close()


@pytest.mark.parametrize("scheme", [None, "tms", "xyz"])
def test_mbtiles(tmp_path: Path, scheme: str | None) -> None:
    write_mbtiles(tmp_path / "world.mbtiles", scheme)
    for cache in (open_cache(tmp_path / "world.mbtiles"), open_cache(tmp_path)):
        assert cache.maps == ["world"]
        assert cache.layout == "mbtiles"
        assert cache.zooms("world") == sorted({t.z for t in TILES})
        assert sorted(t for z in cache.zooms("world") for t in cache.tiles("world", z)) == sorted(TILES)
        for tile in TILES:
            assert cache.read("world", tile) == png(tile)
        assert cache.read("world", MISSING) is None


def test_corrupt_mbtiles(tmp_path: Path) -> None:
    (tmp_path / "bad.mbtiles").write_bytes(b"garbage" * 200)
    cache = open_cache(tmp_path / "bad.mbtiles")
    with pytest.raises(SegError, match=r"bad\.mbtiles"):
        cache.zooms("bad")
    with pytest.raises(SegError, match=r"bad\.mbtiles"):
        cache.read("bad", TILES[0])


def test_berkeleydb_is_reported(tmp_path: Path) -> None:
    sdb = tmp_path / "cache" / "Old" / "z3" / "0" / "0" / "0.0.sdb"
    sdb.parent.mkdir(parents=True)
    sdb.write_bytes(b"\x00\x06\x15\x61" + b"\x00" * 60)
    with pytest.raises(SegError, match=r"BerkeleyDB cache \(.sdb\) of map 'Old' not readable: export it"):
        open_cache(tmp_path / "cache")
    write_file_cache(tmp_path / "cache" / "New", "sas")
    cache = open_cache(tmp_path / "cache")
    assert cache.maps == ["New", "Old"]
    assert cache.layout == "mixed"
    assert cache.read("New", TILES[0]) == png(TILES[0])
    with pytest.raises(SegError, match="BerkeleyDB"):
        cache.zooms("Old")


# --- the real SAS.Planet cache ------------------------------------------------------------------------------------


def test_real_sasplanet_cache(shared_fixtures: Path) -> None:
    root = shared_fixtures / "sasplanet_native_tile_cache" / "cache"
    cache = open_cache(root)
    assert cache.layout == "sas"
    assert cache.maps == ["both", "kssat", "map", "sat"]
    assert cache.zooms("sat") == [0, 1, 2]  # SAS folders z1..z3
    assert cache.zooms("map") == [0, 1, 2]
    assert cache.zooms("kssat") == [0, 1, 2]
    assert cache.zooms("both") == [1, 2]
    grid = [Tile(x, y, 2) for x in range(4) for y in range(4)]
    assert list(cache.tiles("sat", 2)) == grid
    assert list(cache.tiles("map", 2)) == grid
    # sat/z3 rows y4 lie outside zoom 2's 4 rows: skipped and reported, never read
    assert cache.skipped("sat") == [PurePosixPath(f"z3/0/x{x}/0/y4.jpg") for x in range(3)]
    assert cache.read("sat", Tile(0, 4, 2)) is None
    assert set(cache.tiles("both", 2)) == set(grid) - {Tile(1, 3, 2), Tile(3, 0, 2), Tile(3, 3, 2)}
    assert list(cache.tiles("kssat", 2)) == [Tile(x, y, 2) for x in range(4) for y in range(2)]
    sat = cache.read("sat", Tile(0, 0, 0))
    assert sat is not None and sat.startswith(b"\xff\xd8")
    both = cache.read("both", Tile(0, 0, 1))
    assert both is not None and both.startswith(b"\x89PNG")
    assert cache.read("sat", Tile(0, 0, 2)) == (root / "sat/z3/0/x0/0/y0.jpg").read_bytes()
    for name in cache.maps:
        for z in cache.zooms(name):
            for tile in cache.tiles(name, z):
                assert tile_bounds(tile) == pytest.approx(xyz_bounds(tile), abs=1.0)


def xyz_bounds(tile: Tile) -> tuple[float, float, float, float]:
    """Tile bounds computed independently: corners by the slippy-map formula, then the spherical Mercator."""
    n = 2**tile.z
    radius = 6378137.0

    def corner(x: int, y: int) -> tuple[float, float]:
        lon = x / n * 360.0 - 180.0
        lat = math.atan(math.sinh(math.pi * (1 - 2 * y / n)))
        return math.radians(lon) * radius, math.log(math.tan(math.pi / 4 + lat / 2)) * radius

    left, top = corner(tile.x, tile.y)
    right, bottom = corner(tile.x + 1, tile.y + 1)
    return left, bottom, right, top


@given(tile=tiles())
def test_tile_bounds_match_the_xyz_formula(tile: Tile) -> None:
    assert tile_bounds(tile) == pytest.approx(xyz_bounds(tile), abs=1.0)
