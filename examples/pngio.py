"""Read and write 8-bit grayscale PNG files with the standard library only (zlib + struct).

Enough for the image example: PIL is not needed. `write_png(path, pixels)` takes a uint8 array
[H, W]; `read_png(path)` returns one (grayscale, 8-bit, non-interlaced; RGB is averaged to gray).
"""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png(path: str | Path, pixels: np.ndarray) -> None:
    pixels = np.asarray(pixels, dtype=np.uint8)  # [H, W]
    height, width = pixels.shape
    raw = b"".join(b"\x00" + row.tobytes() for row in pixels)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)  # 8-bit grayscale
    Path(path).write_bytes(SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(raw))
                           + _chunk(b"IEND", b""))


def _unfilter(data: bytes, height: int, width: int, bpp: int) -> np.ndarray:
    stride, out, prev = width * bpp, [], bytearray(width * bpp)
    for r in range(height):
        kind, line = data[r * (stride + 1)], bytearray(data[r * (stride + 1) + 1 : (r + 1) * (stride + 1)])
        for i in range(stride):
            a = line[i - bpp] if i >= bpp else 0
            b, c = prev[i], prev[i - bpp] if i >= bpp else 0
            if kind == 1:
                line[i] = (line[i] + a) & 0xFF
            elif kind == 2:
                line[i] = (line[i] + b) & 0xFF
            elif kind == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[i] = (line[i] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 0xFF
        out.append(bytes(line))
        prev = line
    return np.frombuffer(b"".join(out), dtype=np.uint8).reshape(height, width, bpp)


def read_png(path: str | Path) -> np.ndarray:
    blob = Path(path).read_bytes()
    if not blob.startswith(SIGNATURE):
        raise ValueError(f"{path} is not a PNG file")
    pos, idat, header = 8, b"", None
    while pos < len(blob):
        (length,), kind = struct.unpack(">I", blob[pos : pos + 4]), blob[pos + 4 : pos + 8]
        data = blob[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            header = struct.unpack(">IIBBBBB", data)
        elif kind == b"IDAT":
            idat += data
        pos += 12 + length
    width, height, depth, color, _, _, interlace = header
    bpp = {0: 1, 2: 3, 4: 2, 6: 4}.get(color)
    if depth != 8 or bpp is None or interlace:
        raise ValueError(f"{path}: only 8-bit, non-interlaced gray/RGB(A) PNGs are read here")
    pixels = _unfilter(zlib.decompress(idat), height, width, bpp)  # [H, W, bpp]
    gray = pixels[..., :3].mean(axis=2) if bpp >= 3 else pixels[..., 0]
    return gray.astype(np.uint8)  # [H, W]
