"""Label Studio brush RLE.

Encoding contract (Label Studio's, from the ``rle-pack`` scheme its editor uses): a brush region stores the
**row-major RGBA image** of the whole picture, ``H x W x 4`` bytes flattened C-order (pixel by pixel, R G B A), as a
bit stream packed most significant bit first into the list of byte values ``value["rle"]``. The stream is:

* a header of 53 bits: the number of values ``N`` (32 bits, ``H * W * 4``), the word size minus one (5 bits; 8 for
  RGBA bytes) and four run-length field sizes minus one (4 bits each; ``[3, 4, 8, 16]`` as written by the SDK and the
  editor);
* records until ``N`` values are out: a flag bit, a 2-bit index choosing one of the four field sizes, and in that many
  bits the record length minus one. Flag 1: a run, one word repeated ``length`` times. Flag 0: ``length`` literal words;
* zero bits up to the next byte (the SDK always adds 1 to 8 of them).

The mask is the **alpha channel** (every fourth value), any nonzero alpha being object: the editor's brush strokes are
anti-aliased, so real regions hold alphas from 1 to 255. :func:`encode` writes object pixels as ``(255, 255, 255,
255)`` and background as zeros, byte for byte what the SDK's ``mask2rle(mask * 255)`` writes (runs of one value are
literal records, runs over 65,536 values are split). Parsing loops once per record (a run or a literal block: a few
thousand in real regions, about a microsecond each; never one per value or bit); everything else is vectorised with
numpy.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from seg.dataset.images import MAX_PIXELS  # the same bomb guard as image files

#: Bits before the first record: value count (32), word size (5) and four run-length field sizes (4 x 4).
HEADER_BITS = 53
#: Run-length field sizes written by :func:`encode` (the SDK's and the editor's).
RLE_SIZES = (3, 4, 8, 16)


@dataclass(frozen=True)
class Records:
    """The records of a parsed stream.

    Attributes:
        count: values the stream holds (``N`` of the header).
        word_size: bits per value.
        data: the stream's bytes, padded with zero bytes for window reads.
        starts: index of the first value of each record.
        lengths: values each record covers.
        runs: True for runs, False for literal blocks.
        payload: a run's value, or the bit position of a literal block's first word.
    """

    count: int
    word_size: int
    data: npt.NDArray[np.uint8]
    starts: npt.NDArray[np.int64]
    lengths: npt.NDArray[np.int64]
    runs: npt.NDArray[np.bool_]
    payload: npt.NDArray[np.int64]


def _as_bytes(rle: Sequence[int]) -> npt.NDArray[np.uint8]:
    if isinstance(rle, str | bytes | dict):
        raise ValueError(f"brush RLE must be a list of byte values, got {type(rle).__name__}")
    try:
        values = np.asarray(rle)
    except (ValueError, TypeError) as e:
        raise ValueError(f"brush RLE must be a list of byte values: {e}") from None
    if values.ndim != 1 or (values.size and values.dtype.kind not in "iu"):
        raise ValueError("brush RLE must be a flat list of integers")
    if values.size < 8:
        raise ValueError(f"brush RLE is too short ({values.size} bytes, the header alone takes 8)")
    if values.min() < 0 or values.max() > 255:
        raise ValueError("brush RLE values must be bytes (0 to 255)")
    return values.astype(np.uint8)


def parse(rle: Sequence[int]) -> Records:
    """Parse a brush RLE stream into its records without expanding them.

    Raises:
        ValueError: not a list of bytes, a header other than byte words, a stream that ends inside a record, or
            records that run past the value count.
    """
    raw = _as_bytes(rle)
    data = np.concatenate([raw, np.zeros(9, np.uint8)])
    buffer = data.tobytes()
    header = int.from_bytes(buffer[:8], "big")
    count = header >> 32
    word_size = ((header >> 27) & 0x1F) + 1
    sizes = [((header >> shift) & 0xF) + 1 for shift in (23, 19, 15, 11)]
    if word_size > 8:
        raise ValueError(f"brush RLE word size is {word_size} bits, expected at most 8 (RGBA bytes)")
    total_bits = raw.size * 8
    # The only sequential part: hop from record to record (one Python step per record, none per value or bit).
    table = [(sizes[code & 3], (1 << sizes[code & 3]) - 1, 3 + sizes[code & 3], code >> 2) for code in range(8)]
    positions: list[int] = []
    position, done = HEADER_BITS, 0
    while done < count:
        window = int.from_bytes(buffer[position >> 3 : (position >> 3) + 4], "big")  # 7 + 3 + 16 bits fit in 32
        shift = 29 - (position & 7)
        size, mask, head, run = table[(window >> shift) & 7]
        length = ((window >> (shift - size)) & mask) + 1
        positions.append(position)
        position += head + (word_size if run else length * word_size)
        done += length
        if position > total_bits:
            raise ValueError(f"brush RLE is truncated: record {len(positions)} runs past the stream's end")
    if done > count:
        raise ValueError(f"brush RLE records cover {done} values, more than the {count} of its header")
    bits = np.array(positions, dtype=np.int64)
    code = _field(data, bits, np.full(bits.size, 3))
    size_bits = np.array(sizes, np.int64)[code & 3]
    lengths = _field(data, bits + 3, size_bits) + 1
    runs = (code >> 2) == 1
    payload = bits + 3 + size_bits
    payload[runs] = _field(data, payload[runs], np.full(int(runs.sum()), word_size))
    return Records(
        count=count,
        word_size=word_size,
        data=data,
        starts=np.cumsum(lengths) - lengths,
        lengths=lengths,
        runs=runs,
        payload=payload,
    )


def _field(data: npt.NDArray[np.uint8], bits: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64]) -> npt.NDArray:
    """The unsigned ``sizes``-bit fields (at most 17 bits) starting at the given bit positions."""
    byte = bits >> 3
    window = data[byte].astype(np.int64) << 16 | data[byte + 1].astype(np.int64) << 8 | data[byte + 2]
    return (window >> (24 - sizes - (bits & 7))) & ((1 << sizes) - 1)


def _words(data: npt.NDArray[np.uint8], bits: npt.NDArray[np.int64], word_size: int) -> npt.NDArray[np.uint8]:
    """The ``word_size``-bit words (at most 8) starting at the given bit positions."""
    byte = bits >> 3
    pair = (data[byte].astype(np.uint16) << 8) | data[byte + 1]
    return ((pair >> (16 - word_size - (bits & 7))) & ((1 << word_size) - 1)).astype(np.uint8)


def expand(records: Records, stride: int = 1, offset: int = 0) -> npt.NDArray[np.uint8]:
    """The values at positions ``offset, offset + stride, ...`` of the decoded stream (all values by default)."""
    lo = -((offset - records.starts) // stride)  # first kept position in each record: ceil((start - offset) / stride)
    hi = -((offset - records.starts - records.lengths) // stride)
    kept = hi - lo
    literal = ~records.runs
    # segments: one per run, one per kept literal value
    slots = np.where(literal, kept, 1)
    first_slot = np.cumsum(slots) - slots
    total_slots = int(slots.sum())
    seg_values = np.zeros(total_slots, np.uint8)
    seg_lengths = np.ones(total_slots, np.int64)
    run_slots = first_slot[records.runs]
    seg_values[run_slots] = records.payload[records.runs].astype(np.uint8)
    seg_lengths[run_slots] = kept[records.runs]
    literal_kept = kept[literal]
    if literal_kept.sum():
        block = np.repeat(np.arange(literal_kept.size), literal_kept)
        inside = np.arange(block.size) - np.repeat(np.cumsum(literal_kept) - literal_kept, literal_kept)
        position = lo[literal][block] + inside  # index in the kept sequence
        word = offset + position * stride - records.starts[literal][block]
        bits = records.payload[literal][block] + word * records.word_size
        slot = first_slot[literal][block] + inside
        seg_values[slot] = _words(records.data, bits, records.word_size)
    return np.repeat(seg_values, seg_lengths)


def decode_values(rle: Sequence[int]) -> npt.NDArray[np.uint8]:
    """Decode a stream to its flat values (the RGBA bytes), as the SDK's ``decode_rle`` does.

    Raises:
        ValueError: see :func:`parse`; also a value count above ``MAX_PIXELS * 4``.
    """
    records = _parse_checked(rle, None)
    return expand(records)


def _parse_checked(rle: Sequence[int], expected: int | None) -> Records:
    raw = _as_bytes(rle)
    count = int.from_bytes(raw[:4].tobytes(), "big")
    if expected is not None and count != expected:
        raise ValueError(f"brush RLE holds {count} values, expected height x width x 4 = {expected}")
    if count > MAX_PIXELS * 4:
        raise ValueError(f"brush RLE claims {count} values, more than {MAX_PIXELS} RGBA pixels")
    return parse(raw)


def decode(rle: Sequence[int], height: int, width: int) -> npt.NDArray[np.uint8]:
    """Decode a brush RLE stream to an (H, W) uint8 mask of 0 and 1 (nonzero alpha = object).

    Raises:
        ValueError: a size that is not positive or above ``MAX_PIXELS``, a value count other than ``H * W * 4``, or a
            malformed stream (see :func:`parse`).
    """
    height, width = int(height), int(width)
    if height <= 0 or width <= 0:
        raise ValueError(f"brush mask size must be positive, got {width}x{height}")
    if height * width > MAX_PIXELS:
        raise ValueError(f"brush mask of {width}x{height} is larger than {MAX_PIXELS} pixels")
    records = _parse_checked(rle, height * width * 4)
    alpha = expand(records, stride=4, offset=3)
    return (alpha != 0).view(np.uint8).reshape(height, width)


def _pack(lengths: npt.NDArray[np.int64], values: npt.NDArray[np.int64], count: int) -> list[int]:
    """The stream of runs (``lengths`` > 0, ``values`` bytes) covering ``count`` values, as the SDK writes it."""
    # runs over 65536 values are split into 65536-value pieces and a remainder, all with 16-bit lengths
    long = lengths > 2**16
    pieces = np.where(long, -(-lengths // 2**16), 1)
    piece_run = np.repeat(np.arange(lengths.size), pieces)
    rank = np.arange(piece_run.size) - np.repeat(np.cumsum(pieces) - pieces, pieces)
    piece_len = np.where(rank < pieces[piece_run] - 1, 2**16, lengths[piece_run] - rank * 2**16)
    piece_val = values[piece_run]
    size_index = np.searchsorted(np.array([8, 16, 256]), piece_len)  # 1..8 -> 0, 9..16 -> 1, ..256 -> 2, else 3
    size_index[long[piece_run]] = 3
    size_bits = np.array(RLE_SIZES, np.int64)[size_index]
    flag = (piece_len > 1).astype(np.int64)  # a single value is a one-word literal, as the SDK writes it
    code = (flag << 2 | size_index) << size_bits | (piece_len - 1)
    code = code << 8 | piece_val
    widths = 3 + size_bits + 8
    header = count << 21 | 7 << 16  # value count, word size 8
    for i, size in enumerate(RLE_SIZES):
        header |= (size - 1) << (12 - 4 * i)
    codes = np.concatenate([[header >> 32, header & 0xFFFFFFFF], code])
    widths = np.concatenate([[HEADER_BITS - 32, 32], widths])
    # Place every code (at most 32 bits) in a 40-bit window starting at its first byte, then add the windows' bytes
    # up: codes never share a bit, so the sums are the bitwise ORs. The SDK pads with 1 to 8 zero bits.
    offsets = np.cumsum(widths) - widths
    size = int(offsets[-1] + widths[-1]) // 8 + 1
    windows = codes << (40 - widths - (offsets & 7))
    first = offsets >> 3
    index = np.concatenate([first + k for k in range(5)])
    parts = np.concatenate([(windows >> (32 - 8 * k)) & 0xFF for k in range(5)])
    packed = np.bincount(index, weights=parts, minlength=size + 5)[:size]
    return packed.astype(np.uint8).tolist()


def _check_count(count: int) -> None:
    if count == 0:
        raise ValueError("cannot encode an empty (zero-size) image")
    if count >= 2**32:
        raise ValueError(f"image too large for a brush RLE ({count} values, the header holds 32 bits)")


def encode(mask: npt.NDArray) -> list[int]:
    """Encode an (H, W) mask (nonzero = object) as a brush RLE stream of the RGBA image, object pixels
    ``(255, 255, 255, 255)``.

    Raises:
        ValueError: not a 2-D mask, an empty one, or one too large for the 32-bit value count.
    """
    mask = np.asarray(mask)
    if mask.ndim != 2:
        raise ValueError(f"expected an (H, W) mask, got shape {mask.shape} {mask.dtype}")
    _check_count(mask.size * 4)
    flat = (mask != 0).ravel()
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    lengths = np.diff(bounds) * 4
    values = np.where(flat[bounds[:-1]], 255, 0)
    return _pack(lengths, values, mask.size * 4)


def encode_values(values: npt.ArrayLike) -> list[int]:
    """Encode any flat sequence of byte values (the SDK's ``encode_rle`` with its defaults).

    Raises:
        ValueError: not a non-empty flat sequence of integers from 0 to 255.
    """
    flat = np.asarray(values)
    if flat.ndim != 1 or (flat.size and flat.dtype.kind not in "iu"):
        raise ValueError("expected a flat sequence of integers")
    _check_count(flat.size)
    if flat.min() < 0 or flat.max() > 255:
        raise ValueError("values must be bytes (0 to 255)")
    edges = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate([[0], edges, [flat.size]])
    return _pack(np.diff(bounds), flat[bounds[:-1]].astype(np.int64), flat.size)
