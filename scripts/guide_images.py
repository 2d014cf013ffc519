#!/usr/bin/env python3
"""Copies the browser tests' screenshots (target/screenshots/) into the operator's guide
(docs/guide/images/), cutting off the empty page below the content so the images stay small.

    cargo test -p eoms-server --test browser && scripts/guide_images.py

Only the standard library: PNG decoding and encoding for 8-bit RGB/RGBA, non-interlaced (what
Chromium writes).
"""

import struct
import sys
import zlib
from pathlib import Path

IMAGES = ["todo", "ticket", "query", "admin-roles", "ticket-phone", "dashboard"]


def chunks(data):
    pos = 8
    while pos < len(data):
        (n,) = struct.unpack(">I", data[pos : pos + 4])
        kind = data[pos + 4 : pos + 8]
        yield kind, data[pos + 8 : pos + 8 + n]
        pos += 12 + n


def paeth(a, b, c):
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def decode(data):
    ihdr = next(body for kind, body in chunks(data) if kind == b"IHDR")
    w, h, depth, color, _, _, interlace = struct.unpack(">IIBBBBB", ihdr)
    if depth != 8 or color not in (2, 6) or interlace:
        raise SystemExit(f"unsupported PNG (depth {depth}, colour type {color}, interlace {interlace})")
    bpp = 3 if color == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks(data) if kind == b"IDAT"))
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1 : (y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + ((a + b) >> 1)) & 255
            elif f == 4:
                line[x] = (line[x] + paeth(a, b, c)) & 255
        rows.append(bytes(line))
        prev = line
    return w, color, bpp, rows


def encode(w, color, bpp, rows):
    out = bytearray()
    prev = bytes(len(rows[0]))
    for line in rows:
        # The "Up" filter: screenshots repeat vertically.
        out.append(2)
        out.extend((line[i] - prev[i]) & 255 for i in range(len(line)))
        prev = line

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    ihdr = struct.pack(">IIBBBBB", w, len(rows), 8, color, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(bytes(out), 9)) + chunk(b"IEND", b"")


def trim(w, bpp, rows, margin=24):
    """Drops the rows below the last one that differs from the bottom row (the scroll bar, the
    rightmost 20 pixels, is ignored)."""
    keep = (w - 20) * bpp
    bottom = rows[-1][:keep]
    last = len(rows) - 1
    while last > 0 and rows[last][:keep] == bottom:
        last -= 1
    return rows[: min(len(rows), last + 1 + margin)]


def main():
    root = Path(__file__).resolve().parent.parent
    src, dst = root / "target" / "screenshots", root / "docs" / "guide" / "images"
    for name in IMAGES:
        data = (src / f"{name}.png").read_bytes()
        w, color, bpp, rows = decode(data)
        kept = trim(w, bpp, rows)
        # Nothing to cut: keep Chromium's own (better compressed) file.
        png = data if len(kept) == len(rows) else encode(w, color, bpp, kept)
        rows = kept
        (dst / f"{name}.png").write_bytes(png)
        print(f"{name}.png: {w}x{len(rows)}, {len(png)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
