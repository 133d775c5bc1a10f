"""The prediction sampler: test items drawn in the terminal, captioned with the prediction.

Images are half blocks, or real pixels where the terminal speaks an image protocol (Kitty
graphics, Sixel: see pixels.py); surnames are text; feature vectors (clusters, xor,
breast-cancer) are shown as their first few rounded values so the view stays meaningful
for every classification set; regression has no labels to caption and points to the fit
view.
"""

from __future__ import annotations

import random
from typing import Any

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Container, VerticalScroll
from textual.widgets import Static

from dltui.render import caption, features_text, image_size, image_text, steps_text, steps_width, tile
from dltui.words import plural

MAX_ITEMS = 48  # what the engine samples; also bounds the drawing work per refresh


def image_width(shape: tuple[int, ...]) -> int:
    """Columns an image is drawn in: tiny 8x8 digits doubled, 28/32-pixel images halved."""
    w = shape[-1]
    return w * 2 if w <= 16 else max(w // 2, 8)


class Sampler(VerticalScroll):
    """The Samples tab. Modes: the engine's seeded sample (or a fresh draw), mistakes only,
    or one confusion cell's items."""

    DEFAULT_CSS = """
    Sampler > #sampler-pixels { layout: grid; grid-gutter: 0 1; grid-rows: auto; height: auto; }
    """

    def __init__(self, images: str = "halfblock", **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.images = images  # 'halfblock', or the image protocol pixels.detect() found
        self.data: Any = None
        self.eval: Any = None  # the latest EvaluationReady
        self.draws = 0  # 0: the engine's sample; n: Random(n) draw
        self.mistakes = False
        self.cell: tuple[int, int] | None = None
        self.shown: list[int] = []
        self.note = "no predictions yet: start a run (r)"

    def compose(self) -> ComposeResult:
        yield Static("", id="sampler-head")
        yield Static(Text(self.note, style="dim"), id="sampler-body")
        if self.images != "halfblock":
            yield Container(id="sampler-pixels")

    # --- state changes (the app calls these) ---

    def set_data(self, data: Any) -> None:
        self.data, self.eval, self.cell, self.draws = data, None, None, 0
        if data.task == "regression":
            self.note = "regression: no labels to caption, see the fit view in Charts (3)"
        elif data.x_test is None:
            self.note = "this run kept no test items (an older dltui): its curves are in Charts (3)"
        else:
            self.note = "waiting for the first evaluation…"
        self.redraw()

    def set_eval(self, ev: Any) -> None:
        """Store the newest predictions; the app calls redraw() on its drawing tick."""
        if self.data is not None and self.data.task != "regression":
            self.eval = ev

    def new_sample(self) -> None:
        self.draws += 1
        self.cell = None
        self.redraw()

    def toggle_mistakes(self) -> None:
        self.mistakes = not self.mistakes
        self.cell = None
        self.redraw()

    def filter_cell(self, true: int, pred: int) -> None:
        self.cell = (true, pred)
        self.redraw()

    def clear_filter(self) -> None:
        self.cell, self.mistakes = None, False
        self.redraw()

    # --- drawing ---

    def _pool(self) -> tuple[list[int], str]:
        ev, classes = self.eval, self.data.classes
        n = len(ev.y_true)
        if self.cell is not None:
            t, p = self.cell
            idx = _rows((ev.y_true == t) & (ev.y_pred == p)).nonzero().view(-1).tolist()
            what = f"true {classes[t]}, predicted {classes[p]}: {plural(len(idx), 'item')}"
            return idx, what + " · c: back"
        rest = random.Random(self.draws).sample(range(n), n)
        if self.mistakes:
            # the seeded sample's mistakes first, so the view is stable until a new draw
            first = set(ev.sample) if self.draws == 0 else set()
            order = [*ev.sample, *(i for i in rest if i not in first)] if first else rest
            wrong = set(_rows(ev.y_true != ev.y_pred).nonzero().view(-1).tolist())
            idx = [i for i in order if i in wrong]
            return idx, f"mistakes only: {len(wrong)} of {n}"
        arrow = "input→predicted" if self.data.task == "per-step" else "true→predicted"
        if self.draws == 0:
            return list(ev.sample), f"seeded sample of {n} test items · {arrow}"
        return rest, f"draw {self.draws} of {n} test items · {arrow}"

    def _cell(self, i: int, width: int) -> Text:
        data, ev = self.data, self.eval
        if data.task == "per-step":  # 'hello → ohlol ✓': input and target share the alphabet
            spell = lambda ids: "".join(data.classes[int(c)] for c in ids)  # noqa: E731
            inp, true, pred = spell(data.x_test[i]), spell(ev.y_true[i]), spell(ev.y_pred[i])
            return steps_text(inp, true, pred, float(ev.confidence[i].prod()), width)
        true, pred = data.classes[int(ev.y_true[i])], data.classes[int(ev.y_pred[i])]
        cap = caption(true, pred, float(ev.confidence[i]), width)
        kind = data.spec.kind
        if kind == "image":
            body = image_text(data.x_test[i].numpy(), data.scale, image_width(data.spec.input_shape))
        elif kind == "sequence":
            from dltui.data.names import decode

            vocab = data.extras.get("vocab")  # your own text column: id i + 1 is vocab[i]
            ids = data.x_test[i].tolist()
            text = "".join(vocab[c - 1] for c in ids if 0 < c <= len(vocab)) if vocab else decode(ids)
            body = Text(text[:width], style="bold")
        else:
            body = features_text(data.x_test[i].tolist(), width, 1, data.extras.get("feature_names"))
        return body + Text("\n") + cap

    def cell_width(self) -> int:
        kind = self.data.spec.kind
        if self.data.task == "per-step":
            return steps_width(self.data.spec.input_shape[0])
        if kind == "image":
            return max(image_width(self.data.spec.input_shape), 12)
        return 18 if kind == "sequence" else 24

    def redraw(self) -> None:
        # drawing 48 images holds the GIL for tens of ms: never while hidden (the training
        # thread would pay), the app redraws when the tab is shown
        if not self.is_mounted or not self.is_on_screen:
            return
        head, body = self.query_one("#sampler-head", Static), self.query_one("#sampler-body", Static)
        self._clear_pixels()
        if self.eval is None:
            self.shown = []
            head.update("")
            body.update(Text(self.note, style="dim"))
            return
        pool, what = self._pool()
        self.shown = pool[:MAX_ITEMS]
        more = f" · showing {len(self.shown)}" if len(pool) > len(self.shown) else ""
        head.update(Text(f"epoch {self.eval.epoch} · {what}{more}", style="dim", no_wrap=True, overflow="ellipsis"))
        if not self.shown:
            body.update(Text("nothing to show here", style="dim"))
            return
        cw = self.cell_width()
        columns = max(1, (self.content_size.width - 1 + 1) // (cw + 1))  # -1: room for the scrollbar
        if self.images != "halfblock" and self.data.spec.kind == "image":
            body.display = False
            self._show_pixels(cw, columns)
            return
        body.update(tile([self._cell(i, cw) for i in self.shown], cw, columns))

    def _show_pixels(self, cw: int, columns: int) -> None:
        from dltui.tui.pixels import PixelCell

        data, ev = self.data, self.eval
        shape = data.spec.input_shape
        size = image_size(shape, image_width(shape))
        grid = self.query_one("#sampler-pixels", Container)
        grid.styles.grid_size_columns = columns
        grid.styles.grid_columns = str(cw)
        grid.mount_all(
            PixelCell(
                self.images,
                data.x_test[i].numpy(),
                data.scale,
                size,
                caption(data.classes[int(ev.y_true[i])], data.classes[int(ev.y_pred[i])], float(ev.confidence[i]), cw),
            )
            for i in self.shown
        )

    def _clear_pixels(self) -> None:
        self.query_one("#sampler-body", Static).display = True
        if self.images == "halfblock":
            return
        grid = self.query_one("#sampler-pixels", Container)
        for cell in grid.children:
            cell.release()  # type: ignore[attr-defined]
        grid.remove_children()

    def on_resize(self) -> None:
        self.redraw()


def _rows(hits: Any) -> Any:
    """Per item: per-step targets (B, T) count an item when any of its steps matches."""
    return hits.any(1) if hits.dim() > 1 else hits
