"""Web-Mercator tile math: round trips and known values."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from seg.collector.tiles import (
    MAX_LATITUDE,
    ORIGIN_SHIFT,
    Tile,
    children,
    is_valid,
    lnglat_to_meters,
    meters_to_lnglat,
    meters_to_pixels,
    parent,
    pixels_to_meters,
    resolution,
    tile_at,
    tile_bounds,
    tile_lnglat_bounds,
    tiles_covering,
)


@st.composite
def tiles(draw: st.DrawFn, max_zoom: int = 22) -> Tile:
    z = draw(st.integers(0, max_zoom))
    return Tile(draw(st.integers(0, 2**z - 1)), draw(st.integers(0, 2**z - 1)), z)


lons = st.floats(-180, 180)
lats = st.floats(-MAX_LATITUDE, MAX_LATITUDE)


def test_known_values() -> None:
    assert tile_bounds(Tile(0, 0, 0)) == pytest.approx((-ORIGIN_SHIFT, -ORIGIN_SHIFT, ORIGIN_SHIFT, ORIGIN_SHIFT))
    assert resolution(0) == pytest.approx(156543.03392804097)
    west, south, east, north = tile_lnglat_bounds(Tile(0, 0, 1))
    assert (west, south, east, north) == pytest.approx((-180, 0, 0, MAX_LATITUDE), abs=1e-9)
    assert tile_at(0.5, 0.5, 1) == Tile(1, 0, 1)
    assert tile_at(180, -MAX_LATITUDE, 3) == Tile(7, 7, 3)  # edge of the world goes to the edge tile


def test_latitude_outside_mercator() -> None:
    with pytest.raises(ValueError, match="latitude 89"):
        lnglat_to_meters(0, 89)


@given(lons, lats)
def test_lnglat_meters_round_trip(lon: float, lat: float) -> None:
    assert meters_to_lnglat(*lnglat_to_meters(lon, lat)) == pytest.approx((lon, lat), abs=1e-9)


@given(st.floats(-ORIGIN_SHIFT, ORIGIN_SHIFT), st.floats(-ORIGIN_SHIFT, ORIGIN_SHIFT), st.integers(0, 22))
def test_meters_pixels_round_trip(mx: float, my: float, z: int) -> None:
    assert pixels_to_meters(*meters_to_pixels(mx, my, z), z) == pytest.approx((mx, my), abs=1e-6)


@given(tiles())
def test_tile_at_center_is_the_tile(tile: Tile) -> None:
    west, south, east, north = tile_lnglat_bounds(tile)
    b = tile_bounds(tile)
    lon, lat = meters_to_lnglat((b.left + b.right) / 2, (b.bottom + b.top) / 2)
    assert west < lon < east and south < lat < north
    assert tile_at(lon, lat, tile.z) == tile


@given(tiles(max_zoom=21))
def test_children_tile_the_parent(tile: Tile) -> None:
    kids = children(tile)
    assert all(parent(kid) == tile and is_valid(kid) for kid in kids)
    b = tile_bounds(tile)
    kb = [tile_bounds(kid) for kid in kids]
    assert min(k.left for k in kb) == pytest.approx(b.left)
    assert max(k.right for k in kb) == pytest.approx(b.right)
    assert min(k.bottom for k in kb) == pytest.approx(b.bottom)
    assert max(k.top for k in kb) == pytest.approx(b.top)
    area = sum((k.right - k.left) * (k.top - k.bottom) for k in kb)
    assert area == pytest.approx((b.right - b.left) * (b.top - b.bottom))


def test_parent_of_zoom_zero() -> None:
    with pytest.raises(ValueError, match="zoom 0"):
        parent(Tile(0, 0, 0))


@given(tiles(max_zoom=12))
def test_tiles_covering_a_tile_interior_is_the_tile(tile: Tile) -> None:
    west, south, east, north = tile_lnglat_bounds(tile)
    dx, dy = (east - west) / 4, (north - south) / 4
    assert list(tiles_covering(west + dx, south + dy, east - dx, north - dy, tile.z)) == [tile]


def test_tiles_covering_order_and_clamping() -> None:
    assert list(tiles_covering(-180, -90, 180, 90, 1)) == [Tile(0, 0, 1), Tile(1, 0, 1), Tile(0, 1, 1), Tile(1, 1, 1)]
    with pytest.raises(ValueError, match="antimeridian"):
        list(tiles_covering(170, 0, -170, 1, 3))


def test_is_valid() -> None:
    assert is_valid(Tile(3, 3, 2))
    assert not is_valid(Tile(0, 4, 2))
    assert not is_valid(Tile(-1, 0, 2))
    assert math.isclose(resolution(1), resolution(0) / 2)
