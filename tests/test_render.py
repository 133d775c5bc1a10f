"""Unit tests of the pure rendering helpers (no app, no Textual)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from rich.console import Console

from dltui.render import (
    UPPER_HALF,
    abbreviate,
    caption,
    confusion_grid,
    features_text,
    grid_layout,
    image_size,
    image_text,
    tile,
)

FASHION = ("t-shirt", "trouser", "pullover", "dress", "coat", "sandal", "shirt", "sneaker", "bag", "ankle boot")


def lines(text) -> list[str]:
    return text.plain.split("\n")


def test_render_does_not_import_textual_or_torch():
    code = "import sys, dltui.render; print('textual' in sys.modules, 'torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


def test_grayscale_image_is_two_pixels_per_character():
    img = np.zeros((4, 3))
    img[0, 0] = 16  # top-left white
    img[1, 0] = 8  # below it, mid grey
    text = image_text(img, scale=1 / 16)
    assert lines(text) == [UPPER_HALF * 3] * 2
    first = text.spans[0].style
    assert first.color.triplet == (255, 255, 255)
    assert first.bgcolor.triplet == (128, 128, 128)


def test_small_digit_is_upscaled_to_be_legible():
    text = image_text(np.full((1, 8, 8), 16), scale=1 / 16, width=16)
    assert [len(row) for row in lines(text)] == [16] * 8  # 2x: 16 columns, 16 pixel rows
    assert image_size((1, 8, 8), 16) == (16, 8)


def test_large_image_downscales_keeping_aspect():
    assert image_size((1, 28, 28), 14) == (14, 7)
    text = image_text(np.zeros((1, 28, 28), dtype=np.uint8), scale=1 / 255, width=14)
    assert len(lines(text)) == 7


def test_rgb_image_keeps_colour():
    img = np.zeros((3, 2, 1), dtype=np.uint8)
    img[0] = 255  # pure red
    text = image_text(img, scale=1 / 255)
    style = text.spans[0].style
    assert style.color.triplet == (255, 0, 0) and style.bgcolor.triplet == (255, 0, 0)


def test_odd_height_is_padded():
    assert len(lines(image_text(np.ones((3, 2))))) == 2


def test_bad_shape_is_rejected():
    with pytest.raises(ValueError):
        image_text(np.zeros((1, 1, 2, 2)))


def test_abbreviations_are_short_and_distinct():
    for width in (3, 4, 5):
        short = abbreviate(FASHION, width)
        assert len(set(short)) == len(FASHION)
        assert all(len(s) <= width for s in short)
    assert abbreviate(["shirt", "shirts", "shirty"], 3) == ["shi", "shr", "sh2"]


def test_caption_marks_right_and_wrong():
    right = caption("7", "7", 0.987, 12)
    wrong = caption("shirt", "t-shirt", 0.6, 18)
    assert right.plain.strip() == "7 99%" and right.style == "green"
    assert wrong.plain.strip() == "shirt→t-shirt 60%" and wrong.style == "red"
    assert len(caption("ankle boot", "sandal", 0.5, 10).plain) == 10  # cut, never wrapped


def test_confusion_grid_fits_ten_long_names_in_80_columns():
    rng = np.random.default_rng(0)
    matrix = (rng.integers(0, 40, (10, 10)) + np.eye(10, dtype=int) * 950).tolist()
    text = confusion_grid(matrix, FASHION, max_width=76)
    rows = lines(text)
    assert len(rows) == 11  # header + one row per class: nothing wrapped
    assert max(map(len, rows)) <= 76
    assert rows[10].startswith("ankle boot")
    for i, row in enumerate(matrix):  # every count is printed, accuracy at the row end
        assert rows[i + 1].split()[-1] == f"{row[i] / sum(row) * 100:.0f}%"


def test_confusion_grid_colours_by_row_rate_and_marks_the_diagonal():
    text = confusion_grid([[9, 1], [0, 10]], ("a", "b"))
    styles = {text.plain[s.start : s.end].strip(): s.style for s in text.spans if text.plain[s.start : s.end].strip()}
    diag, off = styles["9"], styles["1"]
    assert diag.bold and not off.bold
    assert diag.bgcolor.triplet.green > diag.bgcolor.triplet.red  # green on the diagonal
    assert off.bgcolor.triplet.red > off.bgcolor.triplet.green  # red off it


def test_confusion_cursor_and_click_mapping():
    matrix = [[5, 0, 0], [0, 5, 0], [1, 0, 4]]
    text = confusion_grid(matrix, ("x", "y", "z"), cursor=(2, 0))
    assert any(s.style.reverse for s in text.spans if not isinstance(s.style, str))
    lay = grid_layout(("x", "y", "z"), matrix, 80)
    x = lay.label_width + 1 + 0 * (lay.cell_width + 1)
    assert lay.cell_at(x, 3, 3) == (2, 0)
    assert lay.cell_at(0, 3, 3) is None and lay.cell_at(x, 0, 3) is None


def test_tile_lays_out_cells_in_rows():
    cells = [image_text(np.ones((2, 2)), width=2) + caption("1", "1", 1.0, 4) for _ in range(5)]
    text = tile(cells, cell_width=4, columns=2)
    rows = lines(text)
    assert len(rows) == 3 and all(len(r) == 9 for r in rows[:2])


def test_features_text_is_bounded():
    text = features_text(list(range(30)), width=20, rows=2)
    assert len(lines(text)) == 2 and lines(text)[1].rstrip().endswith("…")
    assert all(len(line) <= 20 for line in lines(text))
    assert lines(features_text([1, -2], width=20, rows=1))[0].strip() == "+1.00 -2.00"


def test_many_classes_drop_the_gap_to_fit():
    names = [f"language{i}" for i in range(17)]
    matrix = [[100 if i == j else 1 for j in range(17)] for i in range(17)]
    rows = lines(confusion_grid(matrix, names, max_width=76))
    assert max(map(len, rows)) <= 76 and len(rows) == 18


def test_renderables_print_without_error():
    console = Console(width=80, record=True, color_system="truecolor")
    console.print(confusion_grid([[1, 2], [3, 4]], ("cat", "dog")))
    console.print(image_text(np.ones((3, 4, 4)) * 255, 1 / 255, width=8))
    assert "cat" in console.export_text()
