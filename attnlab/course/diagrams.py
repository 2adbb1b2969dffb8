"""The book's diagrams, drawn from code: boxes, arrows and tensors in one style, as SVG.

Every word a diagram shows comes from one text file, ``book/diagrams/labels.en.yml`` (diagram ->
label id -> text); a translation is another file with the same ids (``labels.<language>.yml``), passed
as ``labels=``. Sizes in the labels are ``{placeholders}`` filled from the library's defaults
(:func:`values`: ``TransformerConfig``'s d_model = 512 and 8 heads give d_head = 64), so a shape is
never typed twice. The palette and the font come from ``book/course.mplstyle``, as for every plot.

The SVG keeps its text as ``<text>`` (``svg.fonttype: none``): searchable, selectable and replaceable;
and it is byte-for-byte the same from one render to the next (no date, a fixed hash salt).

A chapter shows a diagram with a cell tagged ``remove-input`` whose ``mystnb`` metadata gives the
figure's name, caption and alt text (see CONTRIBUTING.md); :data:`DIAGRAMS` says which chapter uses
which. The chapters' execution cache does not see the labels file: after editing it, rebuild with
``jupyter-book clean --all .`` (or delete ``_build/.jupyter_cache``).

Translated editions (issue 20) execute nothing: they are built from the English execution cache. So
:func:`show` renders, at that one execution, the English diagram as the output's ``image/svg+xml`` and
every other ``labels.<language>.yml`` beside it, in the output's metadata
(``metadata["attnlab"]["translations"][<language>]["image/svg+xml"]``, see :func:`translated_outputs`);
``book/_ext/translated_messages.py`` shows the one of the build's language (Sphinx's ``language``,
e.g. ``zh_CN``) instead of the English one, and an English build ignores the metadata. Each language
draws its script with its own font besides DejaVu Sans (:data:`SCRIPT_FONTS`: Noto Sans CJK SC for
Chinese, from the ``fonts-noto-cjk`` package), which must be installed where the book is executed:
it measures the labels; the SVG names it and browsers' fonts for the script as fallbacks.
"""
from __future__ import annotations

import dataclasses
import io
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import matplotlib
import matplotlib.style
from matplotlib import font_manager
import torch
import yaml
# Figures made without pyplot: a chapter's inline backend and its open figures stay as they are
# (pyplot would show a diagram's figure a second time, and switching the backend would hide every later plot).
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Circle, FancyArrowPatch, FancyBboxPatch, Rectangle
from matplotlib.path import Path as MplPath

from attnlab.tokens import PAD_ID
from attnlab.transformer import TransformerConfig, causal_mask, padding_mask

# The checkout this module belongs to (the book is built from a clone, with attnlab installed editable).
ROOT = Path(__file__).resolve().parents[2]
LABELS = ROOT / "book" / "diagrams" / "labels.en.yml"
STYLE = ROOT / "book" / "course.mplstyle"

FONT_SIZE = 10  # one size for every label of every diagram
LINE_WIDTH = 1.2
TEXT = "#222222"
MUTED = "#555555"  # shapes and notes
ARROW = "#333333"


def _palette() -> list[str]:
    """The colour cycle of course.mplstyle (Okabe-Ito), so that diagrams and plots share their colours."""
    with matplotlib.style.context(str(STYLE)):
        return [c["color"] for c in matplotlib.rcParams["axes.prop_cycle"]]


_BLUE, _VERMILLION, _GREEN, _PURPLE, _ORANGE, _SKY, _YELLOW, _BLACK = _palette()


def _light(colour: str, amount: float = 0.22) -> str:
    """The colour mixed with white: ``amount`` of it, the rest white (fills stay pale, text stays legible)."""
    return to_hex(tuple(amount * c + (1 - amount) for c in to_rgb(colour)))


# kind of box -> (edge, fill). One meaning per colour in every diagram.
KINDS = {
    "attention": (_BLUE, _light(_BLUE)),
    "ffn": (_ORANGE, _light(_ORANGE, 0.25)),
    "norm": (_GREEN, _light(_GREEN)),
    "embed": (_PURPLE, _light(_PURPLE)),
    "output": (_VERMILLION, _light(_VERMILLION)),
    "mask": ("#A89A00", _light(_YELLOW, 0.35)),
    "tensor": (MUTED, "#FFFFFF"),
    "cache": (_SKY, _light(_SKY, 0.3)),
}
RESIDUAL = _SKY  # the residual path
RESIDUAL_WIDTH = 1.8
NEW = _VERMILLION  # what a decoding step adds to the cache
HEADS = [_BLUE, _ORANGE, _GREEN, _VERMILLION, _PURPLE, _SKY, _YELLOW, "#999999"]  # one colour per head


# ----------------------------------------------------------------------------------------------
# Labels and the sizes they mention

def values() -> dict[str, object]:
    """The sizes that labels may mention as ``{name}``, from the library's defaults (the paper's base model)."""
    defaults = {f.name: f.default for f in dataclasses.fields(TransformerConfig)
                if f.default is not dataclasses.MISSING}
    d_model, h = defaults["d_model"], defaults["num_heads"]
    layers = defaults["num_decoder_layers"]
    return {
        "d_model": d_model, "h": h, "d_head": d_model // h, "d_ff": defaults["d_ff"],
        "n_enc": defaults["num_encoder_layers"], "n_dec": layers,
        "last_head": h - 1,
        "kv_per_token": 2 * layers * d_model,  # K and V, every decoder layer, d_model numbers each
    }


def load_labels(labels: str | Path | dict | None = None) -> dict[str, dict[str, str]]:
    """The label file (default: the English one) as {diagram: {label id: text}}; a dict passes through."""
    if isinstance(labels, dict):
        return labels
    path = Path(labels) if labels is not None else LABELS
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise ValueError(f"{path}: expected a mapping of diagram -> label id -> text")
    return data


def placeholders(text: str) -> set[str]:
    """The ``{names}`` a label mentions."""
    return {name for _, name, _, _ in string.Formatter().parse(text) if name}


def texts(name: str, labels: str | Path | dict | None = None) -> dict[str, str]:
    """Diagram ``name``'s labels, sizes filled in: what the SVG shows, one line of a label per <text>."""
    sizes = values()
    return {key: str(text).format_map(sizes) for key, text in load_labels(labels)[name].items()}


def translation_problems(other: str | Path | dict, reference: str | Path | dict | None = None) -> list[str]:
    """What a translation of the label file lacks or adds: diagrams, label ids and placeholders."""
    ref, new = load_labels(reference), load_labels(other)
    problems = [f"diagram {d!r} is missing" for d in ref if d not in new]
    problems += [f"diagram {d!r} is not one of the course's" for d in new if d not in ref]
    for diagram in set(ref) & set(new):
        for key, text in ref[diagram].items():
            if key not in new[diagram]:
                problems.append(f"{diagram}.{key} is missing")
            elif placeholders(str(new[diagram][key])) != placeholders(str(text)):
                problems.append(f"{diagram}.{key}: placeholders {sorted(placeholders(str(new[diagram][key])))} "
                                f"differ from {sorted(placeholders(str(text)))}")
        problems += [f"{diagram}.{key} is not a label of this diagram" for key in new[diagram] if key not in ref[diagram]]
    return problems


# ----------------------------------------------------------------------------------------------
# The canvas: one unit is one inch, the origin at the bottom left

@dataclass
class Box:
    x: float  # centre
    y: float
    w: float
    h: float

    @property
    def left(self): return self.x - self.w / 2

    @property
    def right(self): return self.x + self.w / 2

    @property
    def top(self): return self.y + self.h / 2

    @property
    def bottom(self): return self.y - self.h / 2


class Canvas:
    """A figure in inches that draws boxes, tensors and arrows, with every word taken from ``labels``."""

    def __init__(self, width: float, height: float, labels: dict[str, str]):
        self.labels = labels
        self.used: list[str] = []
        self.fig = Figure(figsize=(width, height))
        FigureCanvasAgg(self.fig)  # measures the labels (problems); savefig picks the SVG writer itself
        self.ax = self.fig.add_axes((0, 0, 1, 1))
        self.ax.set_xlim(0, width)
        self.ax.set_ylim(0, height)
        self.ax.set_axis_off()
        self.framed = []  # (text artist, Box): the text must stay inside its box
        self.free = []  # text artists outside boxes
        self.obstacles: list[Box] = []  # boxes that free text must not cover

    def say(self, key: str) -> str:
        if key in self.used:
            raise ValueError(f"label {key!r} used twice: give each place its own label id")
        self.used.append(key)
        return self.labels[key]

    def _text(self, key, x, y, **kw):
        style = dict(ha="center", va="center", fontsize=FONT_SIZE, color=TEXT, zorder=5)
        style.update(kw)
        return self.ax.text(x, y, self.say(key), **style)

    def text(self, key: str, x: float, y: float, **kw):
        """Free text (not in a box): a note, a shape, a title."""
        style = dict(color=MUTED)
        style.update(kw)
        artist = self._text(key, x, y, **style)
        self.free.append(artist)
        return artist

    def box(self, key: str | None, x: float, y: float, w: float, h: float, kind: str, **kw) -> Box:
        edge, fill = KINDS[kind]
        self.ax.add_patch(FancyBboxPatch((x - w / 2, y - h / 2), w, h, boxstyle="round,pad=0,rounding_size=0.06",
                                         linewidth=LINE_WIDTH, edgecolor=edge, facecolor=fill, zorder=3))
        box = Box(x, y, w, h)
        self.obstacles.append(box)
        if key is not None:
            self.framed.append((self._text(key, x, y, **kw), box))
        return box

    def tensor(self, name: str, shape: str, x: float, y: float, w: float, h: float = 0.5) -> Box:
        """A tensor: its name above its shape, in a white box."""
        box = self.box(None, x, y, w, h, "tensor")
        self.framed.append((self._text(name, x, y + h * 0.2, fontweight="bold"), box))
        self.framed.append((self._text(shape, x, y - h * 0.2, color=MUTED), box))
        return box

    def arrow(self, *points, color: str = ARROW, lw: float = LINE_WIDTH, head: bool = True, zorder: int = 2):
        """A polyline through ``points``, with an arrowhead at the last one."""
        path = MplPath(points, [MplPath.MOVETO] + [MplPath.LINETO] * (len(points) - 1))
        self.ax.add_patch(FancyArrowPatch(path=path, arrowstyle="-|>" if head else "-", mutation_scale=11,
                                          linewidth=lw, color=color, shrinkA=0, shrinkB=0, zorder=zorder,
                                          joinstyle="miter", capstyle="butt"))

    def adder(self, x: float, y: float, r: float = 0.1, color: str = ARROW) -> Box:
        """The residual sum: a circle with a plus drawn in lines (no glyph to translate)."""
        self.ax.add_patch(Circle((x, y), r, facecolor="white", edgecolor=color, linewidth=LINE_WIDTH, zorder=3))
        for dx, dy in ((r * 0.6, 0), (0, r * 0.6)):
            self.ax.plot([x - dx, x + dx], [y - dy, y + dy], color=color, linewidth=LINE_WIDTH, zorder=4)
        box = Box(x, y, 2 * r, 2 * r)
        self.obstacles.append(box)
        return box

    def group(self, x0: float, y0: float, x1: float, y1: float):
        """A dashed frame around the sublayers of one repeated layer."""
        self.ax.add_patch(FancyBboxPatch((x0, y0), x1 - x0, y1 - y0, boxstyle="round,pad=0,rounding_size=0.1",
                                         linewidth=LINE_WIDTH, edgecolor="#888888", facecolor="#F7F7F7",
                                         linestyle=(0, (4, 3)), zorder=1))

    def cells(self, x0: float, y0: float, rows: int, cols: int, size: float, fill, edge: str = "#777777"):
        """A grid of square cells; ``fill(i, j)`` gives the colour of row i (top first), column j."""
        for i in range(rows):
            for j in range(cols):
                self.ax.add_patch(Rectangle((x0 + j * size, y0 + (rows - 1 - i) * size), size, size,
                                            facecolor=fill(i, j), edgecolor=edge, linewidth=0.6, zorder=3))
        box = Box(x0 + cols * size / 2, y0 + rows * size / 2, cols * size, rows * size)
        self.obstacles.append(box)
        return box

    def rect(self, x0, y0, w, h, fill, edge="#777777", lw=0.6, zorder=3):
        self.ax.add_patch(Rectangle((x0, y0), w, h, facecolor=fill, edgecolor=edge, linewidth=lw, zorder=zorder))

    def problems(self) -> list[str]:
        """Labels that overflow their box, leave the figure, cover another label or a box."""
        self.fig.canvas.draw()
        renderer = self.fig.canvas.get_renderer()
        to_inches = self.fig.dpi_scale_trans.inverted()
        extent = lambda t: t.get_window_extent(renderer).transformed(to_inches)
        width, height = self.fig.get_size_inches()
        found = []
        everything = [t for t, _ in self.framed] + self.free
        for t in everything:
            e = extent(t)
            if e.x0 < 0 or e.y0 < 0 or e.x1 > width or e.y1 > height:
                found.append(f"{t.get_text()!r} leaves the figure")
        for t, box in self.framed:
            e = extent(t)
            if e.x0 < box.left + 0.02 or e.x1 > box.right - 0.02 or e.y0 < box.bottom or e.y1 > box.top:
                found.append(f"{t.get_text()!r} overflows its box")
        for i, a in enumerate(everything):
            for b in everything[i + 1:]:
                if extent(a).overlaps(extent(b)):
                    found.append(f"{a.get_text()!r} overlaps {b.get_text()!r}")
        for t in self.free:
            e = extent(t)
            for box in self.obstacles:
                if e.x0 < box.right and e.x1 > box.left and e.y0 < box.top and e.y1 > box.bottom:
                    found.append(f"{t.get_text()!r} covers a box at ({box.x:.2f}, {box.y:.2f})")
        return found


# ----------------------------------------------------------------------------------------------
# The diagrams

def _vertical(c: Canvas, x: float, *boxes: Box):
    """Arrows up from each box to the next."""
    for a, b in zip(boxes, boxes[1:]):
        c.arrow((x, a.top), (x, b.bottom))


def _sublayers(c: Canvas, x: float, y0: float, rows, w: float, h: float, step: float, side: int):
    """A post-norm stack of (sublayer, Add & Norm) pairs from y0 upwards, each with its residual bypass
    on ``side`` (-1 left, +1 right). Returns the boxes."""
    boxes = []
    y = y0
    for key, kind, norm_key in rows:
        sub = c.box(key, x, y, w, h, kind)
        norm = c.box(norm_key, x, y + step, w, h, "norm")
        split = sub.bottom - 0.14
        edge = x + side * (w / 2 + 0.16)
        c.arrow((x, split), (edge, split), (edge, norm.y), (x + side * w / 2, norm.y), color=RESIDUAL,
                lw=RESIDUAL_WIDTH)
        c.arrow((x, sub.top), (x, norm.bottom))
        boxes += [sub, norm]
        y += 2 * step
    return boxes


def encoder_decoder(c: Canvas):
    """The encoder-decoder Transformer of the paper (post-norm), bottom to top."""
    w, h, step = 2.05, 0.34, 0.56
    ex, dx = 2.35, 5.55
    # inputs, embeddings and positions
    c.text("src_tokens", ex, 0.25, color=TEXT)
    c.text("tgt_tokens", dx, 0.25, color=TEXT)
    src_embed = c.box("src_embed", ex, 0.85, w, h, "embed")
    tgt_embed = c.box("tgt_embed", dx, 0.85, w, h, "embed")
    c.arrow((ex, 0.4), (ex, src_embed.bottom))
    c.arrow((dx, 0.4), (dx, tgt_embed.bottom))
    src_add, tgt_add = c.adder(ex, 1.45), c.adder(dx, 1.45)
    src_pos = c.box("src_pos", 0.78, 1.45, 1.2, 0.5, "embed")
    tgt_pos = c.box("tgt_pos", 7.12, 1.45, 1.2, 0.5, "embed")
    c.arrow((src_pos.right, 1.45), (ex - 0.1, 1.45))
    c.arrow((tgt_pos.left, 1.45), (dx + 0.1, 1.45))
    c.arrow((ex, src_embed.top), (ex, 1.35))
    c.arrow((dx, tgt_embed.top), (dx, 1.35))
    # the encoder layer (residuals on the left) and the decoder layer (residuals on the right)
    base = 2.35
    c.group(ex - w / 2 - 0.35, base - 0.42, ex + w / 2 + 0.12, base + 3 * step + 0.3)
    enc = _sublayers(c, ex, base, [("enc_self", "attention", "enc_norm1"), ("enc_ffn", "ffn", "enc_norm2")],
                     w, h, step, side=-1)
    c.group(dx - w / 2 - 0.12, base - 0.42, dx + w / 2 + 0.35, base + 5 * step + 0.3)
    dec = _sublayers(c, dx, base, [("dec_self", "attention", "dec_norm1"), ("dec_cross", "attention", "dec_norm2"),
                                   ("dec_ffn", "ffn", "dec_norm3")], w, h, step, side=+1)
    c.text("enc_repeat", ex - w / 2 - 0.45, base + 1.5 * step, ha="right", color=TEXT, fontweight="bold")
    c.text("dec_repeat", dx + w / 2 + 0.45, base + 2.5 * step, ha="left", color=TEXT, fontweight="bold")
    c.text("encoder", ex - w / 2 - 0.45, base + 1.5 * step - 0.4, ha="right")
    c.text("decoder", dx + w / 2 + 0.45, base + 2.5 * step - 0.4, ha="left")
    c.arrow((ex, 1.55), (ex, enc[0].bottom))
    c.arrow((dx, 1.55), (dx, dec[0].bottom))
    c.arrow((enc[1].x, enc[1].top), (enc[2].x, enc[2].bottom))
    c.arrow((dec[1].x, dec[1].top), (dec[2].x, dec[2].bottom))
    c.arrow((dec[3].x, dec[3].top), (dec[4].x, dec[4].bottom))
    # the memory: out of the encoder, into the cross-attention of every decoder layer
    memory = c.tensor("memory", "memory_shape", ex, base + 3 * step + 0.95, 1.9)
    c.arrow((ex, enc[3].top), (ex, memory.bottom))
    gap = (ex + w / 2 + 0.12 + dx - w / 2 - 0.12) / 2
    cross = dec[2]
    c.arrow((memory.right, memory.y), (gap, memory.y), (gap, cross.y), (cross.left, cross.y))
    c.text("memory_note", ex - 0.05, memory.top + 0.42, color=MUTED)
    c.text("kv", (gap + cross.left) / 2, cross.y + 0.16, color=TEXT)
    c.text("q", dx - 0.22, cross.bottom - 0.12, color=TEXT, fontsize=FONT_SIZE)
    # the output layer
    top = base + 5 * step + 0.3
    linear = c.box("linear", dx, top + 0.5, w, h, "output")
    softmax = c.box("softmax", dx, top + 1.05, w, h, "output")
    c.arrow((dx, dec[5].top), (dx, linear.bottom))
    c.arrow((dx, linear.top), (dx, softmax.bottom))
    c.arrow((dx, softmax.top), (dx, softmax.top + 0.3))
    c.text("probabilities", dx, softmax.top + 0.45, color=TEXT)


def _norm_block(c: Canvas, x: float, pre: bool, w: float, h: float):
    """One encoder layer, post-norm or pre-norm, bottom to top; returns the topmost y."""
    side = x - w / 2 - 0.22  # where the residual path runs
    p = "pre_" if pre else "post_"
    c.text(p + "input", x, 0.3, color=TEXT)
    y, last = 0.75, 0.42
    for sub, kind in (("attn", "attention"), ("ffn", "ffn")):
        split = y - 0.12
        c.arrow((x, last), (x, split), head=False, color=RESIDUAL, lw=RESIDUAL_WIDTH)
        if pre:
            norm = c.box(p + "norm_" + sub, x, y + 0.18, w, h, "norm")
            c.arrow((x, split), (x, norm.bottom))
            box = c.box(p + sub, x, norm.y + 0.55, w, h, kind)
            c.arrow((x, norm.top), (x, box.bottom))
            add = c.adder(x, box.y + 0.5)
            c.arrow((x, box.top), (x, add.bottom))
            c.arrow((x, split), (side, split), (side, add.y), (add.left, add.y), color=RESIDUAL, lw=RESIDUAL_WIDTH)
            last, y = add.top, add.y + 0.45
        else:
            box = c.box(p + sub, x, y + 0.18, w, h, kind)
            c.arrow((x, split), (x, box.bottom))
            add = c.adder(x, box.y + 0.5)
            c.arrow((x, box.top), (x, add.bottom))
            c.arrow((x, split), (side, split), (side, add.y), (add.left, add.y), color=RESIDUAL, lw=RESIDUAL_WIDTH)
            norm = c.box(p + "norm_" + sub, x, add.y + 0.45, w, h, "norm")
            c.arrow((x, add.top), (x, norm.bottom))
            last, y = norm.top, norm.y + 0.5
    return last


def block(c: Canvas):
    """An encoder layer in post-norm (the paper) and in pre-norm, side by side."""
    w, h = 2.0, 0.34
    for x, pre in ((1.95, False), (5.35, True)):
        p = "pre_" if pre else "post_"
        top = _norm_block(c, x, pre, w, h)
        c.group(x - w / 2 - 0.42, 0.5, x + w / 2 + 0.2, top + 0.12)
        c.text(p + "repeat", x + w / 2 + 0.3, 2.0, ha="left", color=TEXT, fontweight="bold")
        if pre:
            final = c.box("pre_final_norm", x, top + 0.55, w, h, "norm")
            c.arrow((x, top), (x, final.bottom), color=RESIDUAL, lw=RESIDUAL_WIDTH)
            out_y = final.top + 0.32
            c.arrow((x, final.top), (x, out_y - 0.1))
        else:
            out_y = top + 0.42
            c.arrow((x, top), (x, out_y - 0.1))
        c.text(p + "output", x, out_y + 0.05, color=TEXT)
        c.text(p + "title", x, 5.55, color=TEXT, fontweight="bold")
        c.text(p + "formula", x, 5.25, color=TEXT)
    c.ax.plot([3.2, 3.55], [0.25, 0.25], color=RESIDUAL, linewidth=RESIDUAL_WIDTH)
    c.text("residual_legend", 3.65, 0.25, ha="left")


def qkv(c: Canvas):
    """Self-attention's data flow with the shape of every tensor, bottom to top."""
    xs = {"q": 1.3, "k": 3.1, "v": 4.9}
    x = c.tensor("x", "x_shape", 3.1, 0.35, 1.7)
    for name, cx in xs.items():
        proj = c.box("w_" + name, cx, 1.3, 1.45, 0.48, "attention")
        c.arrow((3.1, x.top), (3.1, x.top + 0.18), (cx, x.top + 0.18), (cx, proj.bottom))
        t = c.tensor(name, name + "_shape", cx, 2.25, 1.45)
        c.arrow((cx, proj.top), (cx, t.bottom))
    mid = 2.2
    score = c.box("scores_op", mid, 3.25, 1.6, 0.4, "attention")
    c.arrow((xs["q"], 2.5), (xs["q"], 2.82), (mid - 0.3, 2.82), (mid - 0.3, score.bottom))
    c.arrow((xs["k"], 2.5), (xs["k"], 2.82), (mid + 0.3, 2.82), (mid + 0.3, score.bottom))
    mask = c.box("mask_op", mid, 4.1, 2.0, 0.4, "mask")
    soft = c.box("softmax_op", mid, 4.95, 1.6, 0.4, "attention")
    out = c.box("weighted_op", 3.55, 5.8, 1.4, 0.4, "attention")
    _vertical(c, mid, score, mask, soft)
    c.text("scores_shape", mid + 0.12, (score.top + mask.bottom) / 2, ha="left")
    c.text("masked_shape", mid + 0.12, (mask.top + soft.bottom) / 2, ha="left")
    c.arrow((mid, soft.top), (mid, out.y), (out.left, out.y))
    c.text("weights_shape", mid - 0.12, (soft.top + out.y) / 2 + 0.05, ha="right")
    c.arrow((xs["v"], 2.5), (xs["v"], out.y), (out.right, out.y))
    result = c.tensor("output", "output_shape", 3.55, 6.75, 1.5)
    c.arrow((out.x, out.top), (out.x, result.bottom))


def _strip(c: Canvas, x0: float, y0: float, width: float, height: float, rows: int, heads: int, gap: float = 0.0,
           colours: bool = True):
    """A (L, d_model) matrix as rows of features, coloured by head; ``gap`` separates the heads' slices."""
    band = (width - gap * (heads - 1)) / heads
    for i in range(heads):
        left = x0 + i * (band + gap)
        c.rect(left, y0, band, height, _light(HEADS[i % len(HEADS)], 0.45) if colours else "#E8E8E8",
               edge=MUTED, lw=0.8)
        for r in range(1, rows):
            c.ax.plot([left, left + band], [y0 + r * height / rows] * 2, color="white", linewidth=1.2, zorder=4)
    box = Box(x0 + width / 2, y0 + height / 2, width, height)
    c.obstacles.append(box)
    return box


def _deck(c: Canvas, x0: float, y0: float, w: float, height: float, rows: int, heads: int):
    """h matrices (L, d_head) stacked like cards: the head axis as a batch axis; head 0 in front."""
    dx, dy = 0.1, 0.07
    for i in reversed(range(heads)):
        left, bottom = x0 + i * dx, y0 + i * dy
        c.rect(left, bottom, w, height, _light(HEADS[i % len(HEADS)], 0.45), edge=MUTED, lw=0.8, zorder=3)
        for r in range(1, rows):
            c.ax.plot([left, left + w], [bottom + r * height / rows] * 2, color="white", linewidth=1.2, zorder=3)
    box = Box(x0 + (w + (heads - 1) * dx) / 2, y0 + (height + (heads - 1) * dy) / 2,
              w + (heads - 1) * dx, height + (heads - 1) * dy)
    c.obstacles.append(box)
    return box


def heads(c: Canvas):
    """The head split as a reshape: (B, L, d_model) -> (B, L, h, d_head) -> (B, h, L, d_head) and back."""
    h = values()["h"]
    rows, sh = 3, 0.36
    x0, width = 1.95, 4.4
    label_x = x0 - 0.2
    arrow_x = x0 + width / 2
    note_x = arrow_x + 0.15

    y = 6.15
    q = _strip(c, x0, y, width, sh, rows, h)
    band = width / h
    c.text("head_first", x0 + band / 2, y + sh + 0.14)
    c.text("head_last", x0 + width - band / 2, y + sh + 0.14)
    c.text("q", label_x, y + sh / 2 + 0.1, ha="right", color=TEXT, fontweight="bold")
    c.text("q_shape", label_x, y + sh / 2 - 0.1, ha="right")

    y2 = 5.05
    c.arrow((arrow_x, q.bottom - 0.05), (arrow_x, y2 + sh + 0.05))
    c.text("view", note_x, (q.bottom + y2 + sh) / 2, ha="left")
    split = _strip(c, x0, y2, width, sh, rows, h, gap=0.07)
    c.text("split_shape", label_x, y2 + sh / 2, ha="right")

    y3 = 3.55
    deck_w = 1.2
    deck_x0 = arrow_x - (deck_w + (h - 1) * 0.1) / 2
    deck = _deck(c, deck_x0, y3, deck_w, sh, rows, h)
    c.arrow((arrow_x, split.bottom - 0.05), (arrow_x, deck.top + 0.05))
    c.text("transpose", note_x + 0.05, (split.bottom + deck.top) / 2, ha="left")
    c.text("heads_shape", deck.left - 0.2, deck.y, ha="right")

    y4 = 2.45
    att = c.box("attend", arrow_x, y4 + 0.2, 2.9, 0.42, "attention")
    c.arrow((arrow_x, deck.bottom - 0.05), (arrow_x, att.top))
    c.text("kv_note", att.left - 0.2, att.y, ha="right")
    c.text("attend_shape", att.right + 0.15, att.y, ha="left")

    y5 = 0.95
    merged = _strip(c, x0, y5, width, sh, rows, h)
    c.arrow((arrow_x, att.bottom), (arrow_x, merged.top + 0.05))
    c.text("merge", note_x, (att.bottom + merged.top) / 2, ha="left")
    c.text("merged_shape", label_x, y5 + sh / 2, ha="right")

    out = c.box("w_o", arrow_x, 0.3, 2.9, 0.4, "output")
    c.arrow((arrow_x, merged.bottom - 0.05), (arrow_x, out.top))


def masks(c: Canvas):
    """The padding mask, the causal mask and both, drawn from the library's own mask tensors."""
    tokens = torch.tensor([[3, 6, 2, PAD_ID, PAD_ID, PAD_ID]])  # (B=1, L): chapter 2's padded sequence
    length = tokens.size(1)
    pad = padding_mask(tokens, PAD_ID)  # (B, 1, 1, L)
    causal = causal_mask(length)  # (L, L)
    grids = {"padding": pad[0, 0].expand(length, length), "causal": causal, "both": (pad & causal)[0, 0]}
    yes, no = _light(_BLUE, 0.75), "#FFFFFF"
    size, y0 = 0.26, 0.95
    starts = {"padding": 0.75, "causal": 3.05, "both": 5.35}
    for name, grid in grids.items():
        x0 = starts[name]
        rows, cols = grid.shape
        c.cells(x0, y0, rows, cols, size, lambda i, j, g=grid: yes if bool(g[i, j]) else no)
        c.text(name + "_title", x0 + cols * size / 2, y0 + rows * size + 0.42, color=TEXT, fontweight="bold")
        c.text(name + "_shape", x0 + cols * size / 2, y0 - 0.22)
    c.text("and", (starts["padding"] + 6 * size + starts["causal"]) / 2, y0 + 3 * size, color=TEXT)
    c.text("equals", (starts["causal"] + 6 * size + starts["both"]) / 2, y0 + 3 * size, color=TEXT)
    # which keys are real tokens and which are padding, over the first grid
    x0, top = starts["padding"], y0 + 6 * size + 0.08
    real = int(pad[0].sum())
    for first, last, key in ((0, real, "real_keys"), (real, 6, "pad_keys")):
        c.ax.plot([x0 + first * size + 0.03, x0 + last * size - 0.03], [top, top], color=MUTED, linewidth=1)
        c.text(key, x0 + (first + last) * size / 2, top + 0.13)
    c.text("keys", x0 - 0.1, top + 0.13, ha="right")
    c.text("queries", x0 - 0.12, y0 + 3 * size, ha="right")
    # the legend
    c.rect(2.0, 0.2, 0.2, 0.2, yes)
    c.text("true", 2.28, 0.3, ha="left", color=TEXT)
    c.rect(4.25, 0.2, 0.2, 0.2, no)
    c.text("false", 4.53, 0.3, ha="left", color=TEXT)


def _cache_matrix(c: Canvas, x0: float, y0: float, rows: int, new: bool, w: float = 0.8, r: float = 0.16):
    """A cached K or V, one row per position; the last row red when it is the step's new one."""
    for i in range(rows):
        fresh = new and i == rows - 1
        c.rect(x0, y0 + (rows - 1 - i) * r, w, r, _light(NEW, 0.5) if fresh else KINDS["cache"][1],
               edge=NEW if fresh else _SKY, lw=0.8)
    box = Box(x0 + w / 2, y0 + rows * r / 2, w, rows * r)
    c.obstacles.append(box)
    return box


def kv_cache(c: Canvas):
    """Decoding step t with a KV cache: what is computed, what is kept, and how it grows."""
    w, h, lx = 1.95, 0.38, 1.6
    c.text("token", lx, 0.25, color=TEXT)
    embed = c.box("embed", lx, 0.8, w, h, "embed")
    c.arrow((lx, 0.4), (lx, embed.bottom))
    c.group(lx - w / 2 - 0.15, 1.3, lx + w / 2 + 0.15, 3.95)
    self_attn = c.box("self_attn", lx, 1.75, w, h, "attention")
    cross_attn = c.box("cross_attn", lx, 2.9, w, h, "attention")
    ffn = c.box("ffn", lx, 3.6, w, h, "ffn")
    _vertical(c, lx, embed, self_attn, cross_attn, ffn)
    c.text("repeat", lx - w / 2 - 0.33, 2.62, color=TEXT, fontweight="bold", rotation=90)
    out = c.box("output", lx, 4.55, w + 0.4, h, "output")
    c.arrow((lx, ffn.top), (lx, out.bottom))

    # the self-attention cache: grows by one row per step
    rows, r, kx, vx = 5, 0.16, 4.3, 5.3
    new_y, read_y = self_attn.y - 0.1, self_attn.y + 0.12
    bottom = new_y - r / 2
    k_self = _cache_matrix(c, kx, bottom, rows, new=True, r=r)
    v_self = _cache_matrix(c, vx, bottom, rows, new=True, r=r)
    c.text("self_k", k_self.x, k_self.bottom - 0.14, color=TEXT)
    c.text("self_v", v_self.x, v_self.bottom - 0.14, color=TEXT)
    c.text("self_title", (kx + vx + 0.8) / 2, k_self.bottom - 0.45, color=TEXT, fontweight="bold")
    c.text("self_shape", (kx + vx + 0.8) / 2, k_self.bottom - 0.7)
    c.text("self_grows", v_self.right + 0.15, new_y, ha="left", color=NEW)
    c.arrow((self_attn.right, new_y), (k_self.left, new_y), color=NEW)
    gap = (self_attn.right + 0.15 + k_self.left) / 2  # between the layer's frame and the cache
    c.text("append", gap, new_y - 0.16, color=NEW)
    c.arrow((k_self.left, read_y), (self_attn.right, read_y))
    c.text("attend_self", gap, read_y + 0.15)

    # the cross-attention cache: the memory's keys and values, computed once
    s_rows = 6
    k_cross = _cache_matrix(c, kx, cross_attn.y - 0.3, s_rows, new=False, r=r)
    v_cross = _cache_matrix(c, vx, cross_attn.y - 0.3, s_rows, new=False, r=r)
    c.text("cross_k", k_cross.x, k_cross.top + 0.14, color=TEXT)
    c.text("cross_v", v_cross.x, v_cross.top + 0.14, color=TEXT)
    c.text("cross_title", (kx + vx + 0.8) / 2, k_cross.top + 0.67, color=TEXT, fontweight="bold")
    c.text("cross_shape", (kx + vx + 0.8) / 2, k_cross.top + 0.42)
    c.arrow((k_cross.left, cross_attn.y), (cross_attn.right, cross_attn.y))
    c.text("attend_cross", gap, cross_attn.y + 0.15)
    memory = c.tensor("memory", "memory_shape", 7.2, k_cross.y, 1.3)
    c.arrow((memory.left, memory.y), (v_cross.right, memory.y))
    c.text("once", memory.x, memory.bottom - 0.33)

    # what it costs
    c.text("cost_title", 5.5, 5.4, color=TEXT, fontweight="bold")
    c.text("cost_self", 5.5, 5.15, color=TEXT)
    c.text("cost_cross", 5.5, 4.9, color=TEXT)


@dataclass(frozen=True)
class Diagram:
    draw: Callable[[Canvas], None]
    size: tuple[float, float]  # inches
    figure: str  # the figure's name in its chapter (the HTML id of its <figure>)
    chapter: str  # book/<chapter>.md shows it


DIAGRAMS = {
    "masks": Diagram(masks, (7.3, 3.3), "fig-masks", "ch02_attention"),
    "qkv": Diagram(qkv, (6.2, 7.15), "fig-qkv", "ch03_self_attention"),
    "heads": Diagram(heads, (7.2, 6.75), "fig-head-split", "ch04_multihead"),
    "block": Diagram(block, (7.0, 5.8), "fig-post-pre-norm", "ch06_transformer_block"),
    "encoder_decoder": Diagram(encoder_decoder, (7.8, 7.75), "fig-encoder-decoder", "ch07_transformer"),
    "kv_cache": Diagram(kv_cache, (8.0, 5.6), "fig-kv-cache", "ch08_training"),
}


# ----------------------------------------------------------------------------------------------
# Rendering

RC = {
    "svg.fonttype": "none",  # text stays <text>: searchable, selectable, translatable
    "svg.hashsalt": "attnlab-diagrams",  # ids in the SVG are the same from one render to the next
    "font.size": FONT_SIZE,
    # DejaVu Sans draws it; Verdana, of nearly the same widths, stands in where a reader lacks it
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans", "Verdana"],
}


# language (its first part, "zh" for zh_CN) -> the font that measures and draws its script here, and the
# fonts a reader's browser may have for it instead. DejaVu Sans keeps the Latin letters, digits and symbols.
SCRIPT_FONTS = {
    "zh": ("Noto Sans CJK SC", ["Source Han Sans SC", "PingFang SC", "Microsoft YaHei"]),
}


def language_of(labels: str | Path | dict | None) -> str | None:
    """The language of a label file named ``labels.<language>.yml`` ("en" for the default); None otherwise."""
    if labels is None:
        return "en"
    if isinstance(labels, (str, Path)):
        parts = Path(labels).name.split(".")
        if len(parts) == 3 and parts[0] == "labels" and parts[2] == "yml":
            return parts[1]
    return None


def _script(language: str | None) -> tuple[str, list[str]] | None:
    """(matplotlib family, browser families) of ``language``'s script; None for a Latin script."""
    return SCRIPT_FONTS.get((language or "en").split("_")[0].split("-")[0].lower())


def script_font_installed(language: str | None) -> bool:
    """Whether matplotlib has the font of ``language``'s script (always, for a Latin script). Where it has
    not (a learner's Colab or Binder running a chapter), the translated figures are simply not made: they
    are for the book's build, which installs the font (`make fonts`) and whose tests fail without them."""
    script = _script(language)
    return script is None or any(font.name == script[0] for font in font_manager.fontManager.ttflist)


def script_font(language: str | None, what: str = "diagrams") -> str | None:
    """The family that draws ``language``'s script (None: the Latin font does); an error naming the package
    to install when matplotlib does not know it (``what`` says which figures need it)."""
    script = _script(language)
    if script is None:
        return None
    if not script_font_installed(language):
        raise RuntimeError(
            f"{what} in {language} need the font {script[0]!r}, which matplotlib does not know: install it "
            f"(Debian/Ubuntu: apt-get install fonts-noto-cjk); if it is installed, matplotlib's font list "
            f"predates it: delete {matplotlib.get_cachedir()}/fontlist-*.json")
    return script[0]


def rc(language: str | None = None) -> dict:
    """Matplotlib's settings for a diagram in ``language``: :data:`RC`, with the font of its script, if any."""
    settings = dict(RC)
    family = script_font(language)
    if family is not None:
        # the family list makes matplotlib fall back to the script's font glyph by glyph; the browser fonts
        # come after DejaVu Sans in the generic list, which matplotlib never reaches (DejaVu Sans is found)
        settings["font.family"] = [RC["font.sans-serif"][0], family, "sans-serif"]
        settings["font.sans-serif"] = [*RC["font.sans-serif"], *_script(language)[1]]
    return settings


def draw(name: str, labels: str | Path | dict | None = None, language: str | None = None) -> Canvas:
    """Diagram ``name`` drawn on a canvas (its figure is ``.fig``); every label of it must be used once.
    ``language`` picks the font (:func:`rc`); by default the label file's name says it."""
    diagram = DIAGRAMS[name]
    words = texts(name, labels)
    language = language or language_of(labels)
    with matplotlib.style.context(str(STYLE)), matplotlib.rc_context(rc(language)):
        canvas = Canvas(*diagram.size, words)
        diagram.draw(canvas)
    unused = [key for key in words if key not in canvas.used]
    if unused:
        raise ValueError(f"diagram {name!r}: labels {unused} are in the label file but not drawn")
    return canvas


def render(name: str, labels: str | Path | dict | None = None, format: str = "svg",  # noqa: A002
           language: str | None = None) -> str | bytes:
    """Diagram ``name`` as SVG text (or PNG bytes with ``format="png"``)."""
    language = language or language_of(labels)
    canvas = draw(name, labels, language)
    out = io.BytesIO()
    with matplotlib.style.context(str(STYLE)), matplotlib.rc_context(rc(language)):
        canvas.fig.savefig(out, format=format, metadata={"Date": None} if format == "svg" else None,
                           facecolor="white")
    return out.getvalue().decode("utf-8") if format == "svg" else out.getvalue()


def translations(folder: Path = LABELS.parent) -> dict[str, Path]:
    """Every translation of the label file: {language: labels.<language>.yml}, English left out."""
    found = {language_of(path): path for path in sorted(folder.glob("labels.*.yml"))}
    return {language: path for language, path in found.items() if language not in (None, "en")}


METADATA_KEY = "attnlab"  # output metadata: {"attnlab": {"translations": {language: {mime type: data}}}}


def translated_outputs(metadata: dict, language: str) -> dict[str, object]:
    """What an output's metadata holds for ``language`` (Sphinx's code, e.g. zh_CN): {mime type: data}."""
    return ((metadata or {}).get(METADATA_KEY) or {}).get("translations", {}).get(language) or {}


class SVG:
    """What a chapter's cell displays: Jupyter shows ``_repr_svg_``; myst-nb writes it to a file for <img>.
    ``translations`` ({language: SVG}) go into the output's metadata, for the translated editions."""

    def __init__(self, data: str, translations: dict[str, str] | None = None):
        self.data = data
        self.translations = dict(translations or {})

    def _repr_svg_(self) -> str:
        return self.data

    def _repr_mimebundle_(self, include=None, exclude=None):
        data = {"image/svg+xml": self.data, "text/plain": repr(self)}
        if not self.translations:
            return data
        return data, {METADATA_KEY: {"translations": {lang: {"image/svg+xml": svg}
                                                      for lang, svg in sorted(self.translations.items())}}}

    def __repr__(self) -> str:
        return f"<diagram, {len(self.data)} characters of SVG>"


def show(name: str, labels: str | Path | dict | None = None) -> SVG:
    """Diagram ``name`` for a notebook cell: ``diagrams.show("qkv")`` as the cell's last line. With the
    default (English) labels, every translation of the label file is rendered too, for the output's
    metadata (the translated editions show it; they execute nothing themselves)."""
    others = {language: render(name, path) for language, path in translations().items()
              if script_font_installed(language)} if labels is None else {}
    return SVG(render(name, labels), others)


# ----------------------------------------------------------------------------------------------
# Chapter 10: the three families of Transformers

def _mask_grid(c: Canvas, x: float, y0: float, causal: bool, n: int = 4, size: float = 0.15) -> Box:
    """A small self-attention mask centred on x: full (every query sees every key) or causal."""
    grid = causal_mask(n) if causal else torch.ones(n, n, dtype=torch.bool)
    yes, no = _light(_BLUE, 0.75), "#FFFFFF"
    return c.cells(x - n * size / 2, y0, n, n, size, lambda i, j: yes if bool(grid[i, j]) else no)


def families(c: Canvas):
    """Encoder-decoder, decoder-only and encoder-only side by side, bottom to top, with their masks."""
    h, step, top_y = 0.36, 0.5, 3.25
    # encoder-decoder: two stacks, the encoder's output is the memory of the cross-attention
    ex, dx, w = 0.85, 2.65, 1.4
    c.text("ed_source", ex, 0.25, color=TEXT)
    c.text("ed_target", dx, 0.25, color=TEXT)
    e_embed = c.box("ed_src_embed", ex, 0.8, w, h, "embed")
    d_embed = c.box("ed_tgt_embed", dx, 0.8, w, h, "embed")
    c.group(ex - w / 2 - 0.08, 1.25, ex + w / 2 + 0.08, 2.35)
    c.group(dx - w / 2 - 0.08, 1.25, dx + w / 2 + 0.08, 2.85)
    e_attn = c.box("ed_enc_attn", ex, 1.55, w, h, "attention")
    e_ffn = c.box("ed_enc_ffn", ex, 1.55 + step, w, h, "ffn")
    d_attn = c.box("ed_dec_attn", dx, 1.55, w, h, "attention")
    d_cross = c.box("ed_dec_cross", dx, 1.55 + step, w, h, "attention")
    d_ffn = c.box("ed_dec_ffn", dx, 1.55 + 2 * step, w, h, "ffn")
    d_out = c.box("ed_output", dx, top_y, w, h, "output")
    c.arrow((ex, 0.4), (ex, e_embed.bottom))
    c.arrow((dx, 0.4), (dx, d_embed.bottom))
    _vertical(c, ex, e_embed, e_attn, e_ffn)
    _vertical(c, dx, d_embed, d_attn, d_cross, d_ffn, d_out)
    gap = (ex + w / 2 + dx - w / 2) / 2
    c.arrow((ex, e_ffn.top), (ex, 2.6), (gap, 2.6), (gap, d_cross.y), (d_cross.left, d_cross.y))
    c.text("ed_memory", (ex + gap) / 2 - 0.1, 2.75)
    c.text("ed_objective", (ex + dx) / 2, 3.95, color=TEXT)
    _mask_grid(c, ex, 4.35, causal=False)
    _mask_grid(c, dx, 4.35, causal=True)
    c.text("ed_title", (ex + dx) / 2, 5.3, color=TEXT, fontweight="bold")

    # decoder-only: one stack, causal mask, next token
    ox, w = 4.55, 1.7
    c.text("do_tokens", ox, 0.25, color=TEXT)
    o_embed = c.box("do_embed", ox, 0.8, w, h, "embed")
    c.group(ox - w / 2 - 0.08, 1.25, ox + w / 2 + 0.08, 2.35)
    o_attn = c.box("do_attn", ox, 1.55, w, h, "attention")
    o_ffn = c.box("do_ffn", ox, 1.55 + step, w, h, "ffn")
    o_out = c.box("do_output", ox, top_y, w, h, "output")
    c.arrow((ox, 0.4), (ox, o_embed.bottom))
    _vertical(c, ox, o_embed, o_attn, o_ffn, o_out)
    c.text("do_objective", ox, 3.95, color=TEXT)
    _mask_grid(c, ox, 4.35, causal=True)
    c.text("do_title", ox, 5.3, color=TEXT, fontweight="bold")

    # encoder-only: one stack, full mask (padding aside), MLM head and a pooled classification head
    nx, w = 6.95, 2.4
    c.text("eo_tokens", nx, 0.25, color=TEXT)
    n_embed = c.box("eo_embed", nx, 0.8, w, h, "embed")
    c.group(nx - w / 2 - 0.08, 1.25, nx + w / 2 + 0.08, 2.35)
    n_attn = c.box("eo_attn", nx, 1.55, w, h, "attention")
    n_ffn = c.box("eo_ffn", nx, 1.55 + step, w, h, "ffn")
    c.arrow((nx, 0.4), (nx, n_embed.bottom))
    _vertical(c, nx, n_embed, n_attn, n_ffn)
    half = (w - 0.1) / 2
    mlm = c.box("eo_mlm", nx - (half + 0.1) / 2, top_y, half, h, "output")
    cls = c.box("eo_class", nx + (half + 0.1) / 2, top_y, half, h, "output")
    c.arrow((mlm.x, n_ffn.top), (mlm.x, mlm.bottom))
    c.arrow((cls.x, n_ffn.top), (cls.x, cls.bottom))
    c.text("eo_objective", nx, 3.95, color=TEXT)
    _mask_grid(c, nx, 4.35, causal=False)
    c.text("eo_title", nx, 5.3, color=TEXT, fontweight="bold")


DIAGRAMS["families"] = Diagram(families, (8.3, 5.6), "fig-three-families", "ch10_encoder_only")
