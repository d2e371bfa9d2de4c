"""A tiny PNG writer (numpy + zlib + struct) and the fingerprint image.

No plotting library is required: the image is drawn into an RGB array — heat map,
frame, ticks every 10 %, labels in a 3×5 pixel font — and written as an 8-bit RGB PNG
(signature, IHDR, one zlib-compressed IDAT, IEND; CRC-32 per chunk).
"""

from __future__ import annotations

import struct
import unicodedata
import zlib
from pathlib import Path

import numpy as np


def encode_png(rgb: np.ndarray) -> bytes:
    """Encode an (H, W, 3) uint8 array as PNG bytes."""
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise ValueError("expected an (H, W, 3) array")
    img = np.ascontiguousarray(rgb, dtype=np.uint8)
    h, w, _ = img.shape
    raw = np.zeros((h, w * 3 + 1), dtype=np.uint8)  # filter byte 0 (None) per row
    raw[:, 1:] = img.reshape(h, w * 3)

    def chunk(tag: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + tag + data
                + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr)
            + chunk(b"IDAT", zlib.compress(raw.tobytes(), 9)) + chunk(b"IEND", b""))


def write_png(path: str | Path, rgb: np.ndarray) -> Path:
    p = Path(path)
    p.write_bytes(encode_png(rgb))
    return p


# viridis, sampled at 6 points (public-domain colour map by van der Walt & Smith)
_VIRIDIS = np.array([[68, 1, 84], [65, 68, 135], [42, 120, 142], [34, 168, 132],
                     [122, 209, 81], [253, 231, 37]], dtype=float)


def colormap(x: np.ndarray) -> np.ndarray:
    """Map values in [0, 1] to viridis RGB (uint8)."""
    x = np.clip(x, 0.0, 1.0) * (len(_VIRIDIS) - 1)
    i = np.minimum(np.floor(x).astype(int), len(_VIRIDIS) - 2)
    f = (x - i)[..., None]
    return (_VIRIDIS[i] * (1 - f) + _VIRIDIS[i + 1] * f).astype(np.uint8)


# 3×5 pixel font: each glyph is 5 rows of 3 bits
_FONT = {
    "0": "111101101101111", "1": "010110010010111", "2": "111001111100111",
    "3": "111001111001111", "4": "101101111001001", "5": "111100111001111",
    "6": "111100111101111", "7": "111001010010010", "8": "111101111101111",
    "9": "111101111001111", "A": "010101111101101", "B": "110101110101110",
    "C": "011100100100011", "D": "110101101101110", "E": "111100110100111",
    "F": "111100110100100", "G": "011100101101011", "H": "101101111101101",
    "I": "111010010010111", "J": "001001001101010", "K": "101101110101101",
    "L": "100100100100111", "M": "101111111101101", "N": "110101101101101",
    "O": "010101101101010", "P": "110101110100100", "Q": "010101101110011",
    "R": "110101110101101", "S": "011100010001110", "T": "111010010010010",
    "U": "101101101101111", "V": "101101101101010", "W": "101101111111101",
    "X": "101101010101101", "Y": "101101010010010", "Z": "111001010100111",
    " ": "000000000000000", "%": "101001010100101", "/": "001001010100100",
    "-": "000000111000000", ".": "000000000000010", ":": "000010000010000",
    "(": "010100100100010", ")": "010001001001010", ">": "100010001010100",
    "=": "000111000111000", ",": "000000000010100",
}


def _ascii(text: str) -> str:
    return unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode().upper()


def draw_text(img: np.ndarray, x: int, y: int, text: str, color: tuple[int, int, int],
              scale: int = 2) -> None:
    """Draw ``text`` with its top-left corner at (x, y) (pixels), clipped to the image."""
    h, w, _ = img.shape
    cx = x
    for ch in _ascii(text):
        glyph = _FONT.get(ch, _FONT[" "])
        bits = np.array([int(b) for b in glyph], dtype=bool).reshape(5, 3)
        block = np.kron(bits, np.ones((scale, scale), dtype=bool))
        y1, x1 = min(y + block.shape[0], h), min(cx + block.shape[1], w)
        if y < h and cx < w and y1 > y and x1 > cx:
            sub = block[: y1 - y, : x1 - cx]
            img[y:y1, cx:x1][sub] = color
        cx += 4 * scale


def text_width(text: str, scale: int = 2) -> int:
    return len(_ascii(text)) * 4 * scale


def heatmap_panel(counts: np.ndarray, cell: int, title: str, xlabel: str,
                  ylabel: str) -> np.ndarray:
    """One panel: counts[turnout bin, share bin] drawn with turnout on x and the share on
    y (0 % at the bottom), log colour scale, frame, ticks every 10 % and labels."""
    bins = counts.shape[0]
    size = bins * cell
    left, top, right, bottom = 44, 28, 12, 40
    img = np.full((top + size + bottom, left + size + right, 3), 255, dtype=np.uint8)
    c = counts.astype(float)
    scale = np.log1p(c) / max(np.log1p(c.max()), 1e-9)
    rgb = colormap(scale)
    rgb[c == 0] = (245, 245, 245)
    # rows of the image = share (top = 100 %), columns = turnout
    grid = np.transpose(rgb, (1, 0, 2))[::-1]
    grid = np.repeat(np.repeat(grid, cell, axis=0), cell, axis=1)
    img[top:top + size, left:left + size] = grid
    black = (0, 0, 0)
    img[top - 1, left - 1:left + size + 1] = black
    img[top + size, left - 1:left + size + 1] = black
    img[top - 1:top + size + 1, left - 1] = black
    img[top - 1:top + size + 1, left + size] = black
    for pct in range(0, 101, 10):
        px = left + round(pct / 100 * size)
        py = top + size - round(pct / 100 * size)
        img[top + size:top + size + 4, min(px, left + size)] = black
        img[py if py < top + size else top + size - 1, left - 4:left] = black
        if pct % 20 == 0:
            draw_text(img, px - text_width(str(pct), 1) // 2, top + size + 6, str(pct),
                      black, 1)
            draw_text(img, left - 6 - text_width(str(pct), 1), py - 2, str(pct), black, 1)
    draw_text(img, left, 8, title, black, 2)
    draw_text(img, left + size // 2 - text_width(xlabel, 1) // 2, top + size + 16, xlabel,
              black, 1)
    draw_text(img, 2, top - 10, ylabel, black, 1)
    return img


def side_by_side(panels: list[np.ndarray], gap: int = 10) -> np.ndarray:
    h = max(p.shape[0] for p in panels)
    w = sum(p.shape[1] for p in panels) + gap * (len(panels) - 1)
    out = np.full((h, w, 3), 255, dtype=np.uint8)
    x = 0
    for p in panels:
        out[: p.shape[0], x:x + p.shape[1]] = p
        x += p.shape[1] + gap
    return out
