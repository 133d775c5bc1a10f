"""Pure rendering helpers: tensors and matrices in, Rich ``Text`` out.

No Textual here (a subprocess test guards it) and no torch: inputs are anything numpy can
read, so the helpers are testable on tiny lists and usable by any face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from rich.color import Color
from rich.style import Style
from rich.text import Text

UPPER_HALF = "▀"
GOOD = "green"
BAD = "red"


# --- images -----------------------------------------------------------------------------


def _to_hwc(pixels: Any, scale: float) -> np.ndarray:
    """(H, W) or (C, H, W) of stored values -> (H, W, C) floats in 0..1."""
    arr = np.asarray(pixels, dtype=np.float32) * scale
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3:
        raise ValueError(f"expected an image of shape (H, W) or (C, H, W), got {arr.shape}")
    return np.clip(arr.transpose(1, 2, 0), 0.0, 1.0)


def _resize(img: np.ndarray, width: int) -> np.ndarray:
    """Nearest-neighbour resize to ``width`` columns, keeping the aspect ratio, with an even
    number of rows so two pixel rows fill one character row."""
    h, w = img.shape[:2]
    height = max(2, round(h * width / w))
    height += height % 2
    rows = np.minimum((np.arange(height) * h / height).astype(int), h - 1)
    cols = np.minimum((np.arange(width) * w / width).astype(int), w - 1)
    return img[rows][:, cols]


def image_size(shape: Sequence[int], width: int) -> tuple[int, int]:
    """(columns, character rows) that :func:`image_text` draws an image of ``shape`` in."""
    h, w = shape[-2], shape[-1]
    height = max(2, round(h * width / w))
    return width, (height + height % 2) // 2


def image_rgb(pixels: Any, scale: float = 1.0) -> np.ndarray:
    """An image of stored values as (H, W, 3) uint8 RGB at its own resolution: what an
    image protocol (Kitty graphics, Sixel) is given to draw real pixels."""
    img = _to_hwc(pixels, scale)
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    return (img[..., :3] * 255).round().astype(np.uint8)


def image_text(pixels: Any, scale: float = 1.0, width: int | None = None) -> Text:
    """Draw an image as half blocks: each character is two pixels, the upper as foreground
    and the lower as background, so it works in any terminal with colour (no image
    protocol). ``scale`` maps stored values to 0..1 (1/16 for digits, 1/255 for uint8);
    ``width`` resamples (8x8 digits at width 16 are upscaled 2x to stay legible)."""
    img = _to_hwc(pixels, scale)
    if width is not None and width != img.shape[1]:
        img = _resize(img, width)
    elif img.shape[0] % 2:
        img = np.concatenate([img, np.zeros_like(img[:1])])
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    rgb = (img[..., :3] * 255).round().astype(np.uint8)
    text = Text(no_wrap=True, overflow="crop")
    styles: dict[tuple[int, ...], Style] = {}  # images repeat colours a lot: reuse styles
    for y in range(0, rgb.shape[0], 2):
        if y:
            text.append("\n")
        for top, bottom in zip(rgb[y], rgb[y + 1], strict=True):
            key = (*top, *bottom)
            style = styles.get(key)
            if style is None:
                style = styles[key] = Style(color=Color.from_rgb(*top), bgcolor=Color.from_rgb(*bottom))
            text.append(UPPER_HALF, style)
    return text


# --- names and captions ----------------------------------------------------------------------


def abbreviate(names: Sequence[str], width: int) -> list[str]:
    """Shorten every name to at most ``width`` characters, keeping them distinct:
    prefix first ('ankle boot' -> 'ankl'), then first letter + consonants, then a number."""
    out: list[str] = []
    for name in names:
        candidates = [name[:width]]
        consonants = name[0] + "".join(c for c in name[1:] if c.lower() not in "aeiou -")
        candidates.append(consonants[:width])
        words = name.split()
        if len(words) > 1:  # 'ankle boot' -> 'a.boo'
            candidates.append((words[0][0] + "." + words[-1])[:width])
        pick = next((c for c in candidates if c not in out), None)
        n = 2
        while pick is None:
            tag = str(n)
            pick = name[: max(width - len(tag), 1)] + tag
            pick = pick if pick not in out else None
            n += 1
        out.append(pick)
    return out


def fit(text: str, width: int) -> str:
    """Cut ``text`` to ``width`` characters, marking the cut with an ellipsis."""
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


def caption(true: str, pred: str, confidence: float, width: int) -> Text:
    """One line under a sample: 'true→predicted confidence' in red for a mistake, just
    'label confidence' in green when right ('7 99%', '1→7 60%')."""
    right = true == pred
    pct = f" {confidence * 100:.0f}%"
    label = pred if right else f"{true}→{pred}"
    body = fit(label, max(width - len(pct), 1)) + pct
    return Text(fit(body, width).ljust(width), style=GOOD if right else BAD, no_wrap=True)


def steps_width(steps: int) -> int:
    """Columns :func:`steps_text` needs for ``steps`` steps, a mistake's truth and 100% included."""
    return 3 * steps + 13


def steps_text(inp: str, true: str, pred: str, confidence: float, width: int | None = None) -> Text:
    """A per-step sample as one line, 'input → predicted', each predicted character green
    when right and red when wrong: 'hello → ohlol ✓ 97%', 'olleh → looho ✗ (lloho) 40%'.
    ``confidence`` is that of the whole predicted string (the product over its steps)."""
    right = true == pred
    text = Text(no_wrap=True, overflow="crop")
    text.append(inp, "bold")
    text.append(" → ")
    for t, p in zip(true, pred, strict=False):
        text.append(p, GOOD if t == p else f"bold {BAD}")
    text.append(" ✓" if right else " ✗", GOOD if right else BAD)
    if not right:
        text.append(f" ({true})", "dim")
    text.append(f" {confidence * 100:.0f}%", "dim")
    if width is not None:
        text.truncate(width)
    return text


def features_text(values: Sequence[float], width: int, rows: int, names: Sequence[str] | None = None) -> Text:
    """A feature vector as up to ``rows`` lines of rounded numbers (vector datasets), each
    after its name where the data has names (your own table's columns), with '…' when some
    did not fit."""
    items = [f"{float(v):+.2f}" for v in values]
    if names is not None and len(names) == len(items):
        items = [f"{n[:12]}={float(v):.2g}" for n, v in zip(names, values, strict=True)]
    lines: list[str] = [""]
    cut = False
    for item in items:
        if lines[-1] and len(lines[-1]) + 1 + len(item) > width:
            if len(lines) == rows:
                cut = True
                break
            lines.append("")
        lines[-1] = f"{lines[-1]} {item}".strip()
    if cut:  # make room for the ellipsis on the last line
        while lines[-1] and len(lines[-1]) + 2 > width:
            lines[-1] = lines[-1].rsplit(" ", 1)[0] if " " in lines[-1] else ""
        lines[-1] = f"{lines[-1]} …".strip()
    return Text("\n".join(x.ljust(width) for x in lines), style="dim", no_wrap=True)


def tile(cells: Sequence[Text], cell_width: int, columns: int, gap: int = 1) -> Text:
    """Lay multi-line cells out in a grid, ``columns`` per row, each ``cell_width`` wide."""
    out = Text(no_wrap=True, overflow="crop")
    for r in range(0, len(cells), columns):
        row = [c.split("\n") for c in cells[r : r + columns]]
        height = max(len(lines) for lines in row)
        if r:
            out.append("\n")
        for i in range(height):
            if i:
                out.append("\n")
            for j, lines in enumerate(row):
                if j:
                    out.append(" " * gap)
                piece = lines[i] if i < len(lines) else Text("")
                piece = piece.copy()
                piece.truncate(cell_width, pad=True)
                out.append_text(piece)
    return out


# --- confusion grid -------------------------------------------------------------------------


@dataclass(frozen=True)
class GridLayout:
    """Where things are in a :func:`confusion_grid`, so a widget can map clicks to cells."""

    label_width: int
    cell_width: int
    gap: int = 1  # between cells; 0 when many classes must fit (coloured cells stay apart)
    header_rows: int = 1

    def cell_at(self, x: int, y: int, n: int) -> tuple[int, int] | None:
        row, col = y - self.header_rows, (x - self.label_width - 1) // (self.cell_width + self.gap)
        if 0 <= row < n and x > self.label_width and 0 <= col < n:
            return row, col
        return None


def grid_layout(classes: Sequence[str], matrix: Sequence[Sequence[int]], max_width: int) -> GridLayout:
    """Choose column widths so the grid fits ``max_width``: cells as narrow as the largest
    count (at least 3), row labels as wide as the room left allows (up to 10)."""
    n = len(classes)
    biggest = max((max(row) for row in matrix), default=0) if matrix else 0
    cell = max(3, len(str(biggest)))
    acc = 5  # ' 100%'
    longest = max((len(c) for c in classes), default=3)
    # wider cells read better ('pull' over 'pul') when the room allows
    while cell < min(5, longest) and max_width - n * (cell + 2) - acc - 1 >= 8:
        cell += 1
    gap = 1 if max_width - n * (cell + 1) - acc - 1 >= 4 else 0
    if not gap and cell == len(str(biggest)) and max_width - n * (cell + 1) - acc - 1 >= 3:
        cell += 1  # no gap: a column of its own for the space between counts ('27100' was 27 | 100)
    room = max_width - n * (cell + gap) - acc - 1
    label = max(3, min(10, max((len(c) for c in classes), default=4), room))
    return GridLayout(label_width=label, cell_width=cell, gap=gap)


def _blend(rate: float, hue: tuple[int, int, int], base: tuple[int, int, int] = (30, 30, 30)) -> Color:
    # sqrt so a few mistakes (rate 0.02) are already visible against the background
    t = min(max(rate, 0.0), 1.0) ** 0.5
    return Color.from_rgb(*(round(b + (h - b) * t) for b, h in zip(base, hue, strict=True)))


def confusion_grid(
    matrix: Sequence[Sequence[int]],
    classes: Sequence[str],
    max_width: int = 80,
    cursor: tuple[int, int] | None = None,
) -> Text:
    """The confusion matrix as text: true classes down, predictions across (abbreviated to
    fit), a count in every cell, background by row-normalised rate (green on the diagonal,
    red off it), per-class accuracy at the row end, ``cursor`` cell reversed."""
    lay = grid_layout(classes, matrix, max_width)
    cw = lay.cell_width
    heads = abbreviate(classes, cw)
    # row labels as short as the column heads are named like them ('Ara' down and across, not 'Ara…')
    cramped = lay.label_width <= cw + 1 and any(len(c) > lay.label_width for c in classes)
    rows = heads if cramped else [fit(c, lay.label_width) for c in classes]
    text = Text(no_wrap=True, overflow="crop")
    corner = "true╲pred" if lay.label_width >= 9 else "true"
    text.append(corner[: lay.label_width].ljust(lay.label_width) + " ", "dim")
    for j, head in enumerate(heads):
        style = "bold reverse" if cursor and cursor[1] == j else "bold"
        text.append(head.rjust(cw), style)
        text.append(" " * lay.gap)
    text.append(" acc" if lay.gap else "  acc", "bold")
    for i, row in enumerate(matrix):
        total = sum(row) or 1
        text.append("\n")
        style = "bold reverse" if cursor and cursor[0] == i else "bold"
        text.append(rows[i].ljust(lay.label_width), style)
        text.append(" ")
        for j, count in enumerate(row):
            rate = count / total
            hue = (40, 160, 70) if i == j else (200, 50, 50)
            bg = _blend(rate, hue)
            fg = "white" if count else "grey42"
            cell = Style(color=fg, bgcolor=bg, bold=i == j, reverse=cursor == (i, j), underline=cursor == (i, j))
            text.append(str(count).rjust(cw), cell)
            text.append(" " * lay.gap)
        acc = row[i] / total
        text.append(f"{acc * 100:{4 if lay.gap else 5}.0f}%", GOOD if acc >= 0.9 else ("yellow" if acc >= 0.6 else BAD))
    return text
