"""The procedural figure every demo stand-in draws: a dress-like garment on a body.

The real datasets cannot be downloaded in this environment, so the pipeline is exercised end
to end on synthetic figures written in each dataset's genuine layout (``agman.data.demo.fashionai``,
``.deepfashion``, ``.zappos``). :func:`render_garment` draws one figure showing a value of each of
four visual attributes (:data:`GARMENT_ATTRIBUTES`), chosen so that a retrieval model has to look
at different levels of a CNN's feature hierarchy, which is what AG-MAN's multi-level attention is
meant to exploit:

* ``sleeve_length`` and ``skirt_length`` are global shape/length properties, best
  read from deep, coarse feature maps;
* ``neckline_design`` is a small local design detail at the top of the bodice, which
  needs mid-level features and spatial attention to find;
* ``texture`` is a low-level fabric pattern, visible in the earliest layers.

Garment colour, background, position, scale and aspect are randomised so that attention has
to localise the relevant part.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from PIL import Image, ImageDraw

#: The renderer's visual attributes and their values, in value-index order.
GARMENT_ATTRIBUTES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("sleeve_length", ("sleeveless", "short", "elbow", "long")),
    ("skirt_length", ("mini", "knee", "midi", "maxi")),
    ("neckline_design", ("round", "v", "square", "boat")),
    ("texture", ("plain", "stripes", "dots", "checks")),
)

# Figure geometry in "units": y grows downwards from the shoulder line (y=0) to the
# feet (y=100); x is measured from the body's centre line. Proportions are
# exaggerated relative to a real body so that neighbouring attribute values still
# differ by several pixels after downscaling to 64x64.
_FIGURE_TOP = -21.0
_FIGURE_BOTTOM = 100.0
_FIGURE_HALF_WIDTH = 42.0
_HEAD_CENTRE_Y = -14.0
_HEAD_RADIUS = 7.0
_NECK_HALF_WIDTH = 4.5
_SHOULDER_HALF_WIDTH = 19.0
_WAIST_HALF_WIDTH = 13.0
_WAIST_Y = 38.0
_BODICE = (
    (-_SHOULDER_HALF_WIDTH, 0.0),
    (_SHOULDER_HALF_WIDTH, 0.0),
    (_WAIST_HALF_WIDTH, _WAIST_Y),
    (-_WAIST_HALF_WIDTH, _WAIST_Y),
)
# Arms hang from just inside the shoulder corner so sleeves overlap the bodice edge.
_SHOULDER_JOINT_X = 16.0
_SHOULDER_JOINT_Y = 2.0
_SKIRT_FLARE = 0.38
_ARM_LENGTH = 48.0
_ARM_HALF_WIDTH = 4.0
_SLEEVE_HALF_WIDTH = 6.0
_HAND_RADIUS = 4.0
_LEG_HALF_WIDTH = 3.5
_LEG_X = 6.0
_LEG_TOP_Y = 50.0

_SLEEVE_LENGTHS = (0.0, 13.0, 26.0, _ARM_LENGTH)
_SKIRT_HEM_Y = (52.0, 66.0, 81.0, 96.0)

# Scale relative to the image size: the whole figure (head to feet) takes 72-98% of
# the image height, so the garment (shoulder to hem) spans ~57-78% of it with a maxi
# skirt and ~31-42% with a mini.
_FIGURE_HEIGHT_RANGE = (0.72, 0.98)
_ASPECT_RANGE = (0.88, 1.14)
# Pattern period in pixels at 128 px; half-periods of 4-6 px survive a 2x downscale.
_TEXTURE_PERIOD_RANGE_128 = (8.0, 12.0)

_SKIN_TONES = ((241, 194, 167), (224, 172, 105), (198, 134, 66), (141, 85, 36), (255, 219, 172))

RGB = tuple[int, int, int]
Point = tuple[float, float]


# How an image is framed depends on the attribute it is annotated with, as in FashionAI,
# where design attributes come as upper-body shots and length attributes as full-length ones:
# (zoom, figure-unit y kept near the image centre). This gives the classification branch
# (Sec. III-B) something real to learn: the attribute type shows in the image
# (agman.data.demo.fashionai.ANNOTATION_SHOT).
SHOTS: dict[str, tuple[float, float]] = {
    "full": (1.0, 0.0),
    "upper": (1.3, 20.0),  # shoulders to hands: every sleeve length is in frame
    "waist": (1.5, 38.0),  # bodice and upper skirt: fabric fills the frame
    "close": (2.2, 0.0),  # head to mid-bodice: the neckline is large
    # A catalogue photograph, as UT-Zappos50K's are: the whole figure centred at one scale on a
    # plain white background. Only the fabric colour, skin tone and arm angle vary.
    "catalogue": (1.0, 0.0),
}
_CATALOGUE_FIGURE_HEIGHT = 0.92  # of the image height
_CATALOGUE_BACKGROUND = (246, 246, 244)


class _Frame:
    """Maps figure units to pixel coordinates for one randomly placed figure."""

    def __init__(self, size: int, rng: np.random.Generator, shot: str = "full") -> None:
        zoom, focus_y = SHOTS[shot]
        if shot == "catalogue":
            figure_px = size * _CATALOGUE_FIGURE_HEIGHT
            self.sx = self.sy = figure_px / (_FIGURE_BOTTOM - _FIGURE_TOP)
            self.cx, self.top = size / 2.0, (size - figure_px) / 2.0
            return
        figure_px = size * rng.uniform(*_FIGURE_HEIGHT_RANGE) * zoom
        self.sy = figure_px / (_FIGURE_BOTTOM - _FIGURE_TOP)
        self.sx = self.sy * rng.uniform(*_ASPECT_RANGE)
        half_width_px = _FIGURE_HALF_WIDTH * self.sx
        if zoom == 1.0:
            # The height and aspect ranges leave horizontal room, so any offset drawn here
            # keeps the whole figure, hands included, inside the canvas.
            x_slack = max(size - 2.0 * half_width_px, 0.0)
            self.cx = half_width_px + rng.uniform(0.0, x_slack)
            self.top = rng.uniform(0.0, max(size - figure_px, 0.0))
        else:
            # A zoomed shot crops the figure; jitter its centre by up to 10% of the image.
            self.cx = size * (0.5 + rng.uniform(-0.1, 0.1))
            self.top = size * (0.5 + rng.uniform(-0.1, 0.1)) - (focus_y - _FIGURE_TOP) * self.sy

    def point(self, x: float, y: float) -> Point:
        return (self.cx + x * self.sx, self.top + (y - _FIGURE_TOP) * self.sy)

    def points(self, pts: Sequence[Point]) -> list[Point]:
        return [self.point(x, y) for x, y in pts]

    def box(self, x0: float, y0: float, x1: float, y1: float) -> tuple[float, float, float, float]:
        (px0, py0), (px1, py1) = self.point(x0, y0), self.point(x1, y1)
        return (px0, py0, px1, py1)


def _luma(colour: np.ndarray) -> float:
    return float(0.299 * colour[0] + 0.587 * colour[1] + 0.114 * colour[2])


def _distance(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.linalg.norm(a.astype(float) - b.astype(float)))


def _rgb(colour: np.ndarray) -> RGB:
    return (int(colour[0]), int(colour[1]), int(colour[2]))


# Garment colours come from a small palette and backgrounds are light neutrals with a tint.
# Fully random colours made the demo unlearnable in a CPU budget: a randomly initialised CNN
# (ImageNet weights cannot be downloaded here) first latches on to colour, and the triplet loss
# sat at the margin for hundreds of steps. With this palette a ResNet-18 learns within minutes,
# while colour, background, position and scale still vary.
FABRIC_COLOURS = ((196, 40, 48), (38, 84, 190), (36, 140, 72), (222, 170, 36), (120, 50, 150), (20, 130, 140),
            (230, 110, 30), (60, 60, 70))


def _jitter(colour, rng: np.random.Generator, amount: int) -> np.ndarray:
    return np.clip(np.asarray(colour) + rng.integers(-amount, amount + 1, size=3), 0, 255)


def _pick_colours(rng: np.random.Generator, fabric_index: int | None = None) -> tuple[RGB, RGB, RGB, RGB]:
    """Fabric, pattern, skin and background colours that stay mutually distinguishable.

    The pattern differs from the fabric in brightness (not just hue) so that it survives
    JPEG chroma subsampling; skin contrasts with the fabric so the neckline cut-out and
    bare arms/legs are visible. ``fabric_index`` pins the fabric to one ``FABRIC_COLOURS``
    family (the demo stand-ins use it as a visible "fabric" attribute); the skin is then
    redrawn instead when the two are too close.
    """
    skin = _jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 10)
    while True:
        if fabric_index is None:
            fabric = _jitter(FABRIC_COLOURS[rng.integers(len(FABRIC_COLOURS))], rng, 15)
        else:
            fabric = _jitter(FABRIC_COLOURS[fabric_index], rng, 15)
        if _distance(fabric, skin) > 90:
            break
        if fabric_index is not None:
            skin = _jitter(_SKIN_TONES[rng.integers(len(_SKIN_TONES))], rng, 10)
    pattern = _jitter((245, 245, 240) if _luma(fabric) < 140 else (25, 25, 30), rng, 10)
    grey = rng.integers(150, 215)
    background = _jitter((grey, grey, grey), rng, 18)
    return _rgb(fabric), _rgb(pattern), _rgb(skin), _rgb(background)


def _background(size: int, colour: RGB, rng: np.random.Generator) -> Image.Image:
    """Noisy background with a few faint blobs, so attention cannot rely on a flat surround."""
    noise = rng.standard_normal((size, size, 3), dtype=np.float32)
    pixels = np.asarray(colour, dtype=np.float32) + 6.0 * noise
    image = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(image)
    base = np.asarray(colour, dtype=float)
    for _ in range(int(rng.integers(1, 5))):
        # Blend towards the background colour so blobs distract without looking like fabric.
        tint = base + 0.3 * (rng.integers(0, 256, size=3) - base)
        x0, y0 = rng.uniform(-0.1, 0.9, size=2) * size
        w, h = rng.uniform(0.08, 0.3, size=2) * size
        shape = draw.ellipse if rng.random() < 0.6 else draw.rectangle
        shape((x0, y0, x0 + w, y0 + h), fill=_rgb(tint))
    return image


def _texture(size: int, kind: int, fabric: RGB, pattern: RGB, rng: np.random.Generator) -> Image.Image:
    """A full-canvas fabric pattern; the garment mask later cuts the garment out of it."""
    name = GARMENT_ATTRIBUTES[3][1][kind]
    if name == "plain":
        return Image.new("RGB", (size, size), fabric)
    period = max(4.0, rng.uniform(*_TEXTURE_PERIOD_RANGE_128) * size / 128.0)
    phase_x, phase_y = rng.uniform(0.0, period, size=2)
    # Open grids broadcast to the full canvas only where a pattern needs both axes.
    ys, xs = np.ogrid[0:size, 0:size]
    xs = xs.astype(np.float32) + phase_x
    ys = ys.astype(np.float32) + phase_y
    if name == "stripes":
        along = ys if rng.random() < 0.5 else xs
        on = np.mod(along, period) < period / 2.0
    elif name == "dots":
        on = _dots(xs, ys, period, rng)
    else:
        on = (np.mod(xs, period) < period / 2.0) ^ (np.mod(ys, period) < period / 2.0)
    on = np.broadcast_to(on, (size, size))
    pixels = np.where(on[..., None], np.asarray(pattern, np.uint8), np.asarray(fabric, np.uint8))
    return Image.fromarray(pixels, "RGB")


def _dots(xs: np.ndarray, ys: np.ndarray, period: float, rng: np.random.Generator) -> np.ndarray:
    """Polka dots on a staggered grid; the stagger keeps them from reading as a check."""
    radius = period * rng.uniform(0.26, 0.32)
    row = np.floor(ys / period)
    dx = np.mod(xs + 0.5 * period * np.mod(row, 2), period) - period / 2.0
    dy = np.mod(ys, period) - period / 2.0
    return dx * dx + dy * dy < radius * radius


def _along_arm(side: float, angle: float, distance: float) -> Point:
    """Point ``distance`` units down an arm hanging outwards from the shoulder joint."""
    return (side * (_SHOULDER_JOINT_X + math.sin(angle) * distance), _SHOULDER_JOINT_Y + math.cos(angle) * distance)


def _arm_quad(side: float, angle: float, start: float, end: float, half_width: float) -> list[Point]:
    """A band of the given half-width along the arm, between two distances from the shoulder."""
    nx, ny = math.cos(angle) * half_width, -side * math.sin(angle) * half_width
    (ax, ay), (bx, by) = _along_arm(side, angle, start), _along_arm(side, angle, end)
    return [(ax - nx, ay - ny), (bx - nx, by - ny), (bx + nx, by + ny), (ax + nx, ay + ny)]


def _draw_body(draw: ImageDraw.ImageDraw, frame: _Frame, skin: RGB, arm_angle: float) -> None:
    """Bare skin under the garment: what sleeve, hem and neckline cut-outs reveal."""
    draw.ellipse(
        frame.box(-_HEAD_RADIUS, _HEAD_CENTRE_Y - _HEAD_RADIUS, _HEAD_RADIUS, _HEAD_CENTRE_Y + _HEAD_RADIUS),
        fill=skin,
    )
    draw.rectangle(frame.box(-_NECK_HALF_WIDTH, _HEAD_CENTRE_Y, _NECK_HALF_WIDTH, 1.0), fill=skin)
    draw.polygon(frame.points(_BODICE), fill=skin)
    for side in (-1.0, 1.0):
        draw.polygon(frame.points(_arm_quad(side, arm_angle, 0.0, _ARM_LENGTH, _ARM_HALF_WIDTH)), fill=skin)
        hx, hy = _along_arm(side, arm_angle, _ARM_LENGTH)
        draw.ellipse(frame.box(hx - _HAND_RADIUS, hy - _HAND_RADIUS, hx + _HAND_RADIUS, hy + _HAND_RADIUS), fill=skin)
        leg_x = side * _LEG_X
        draw.rectangle(frame.box(leg_x - _LEG_HALF_WIDTH, _LEG_TOP_Y, leg_x + _LEG_HALF_WIDTH, _FIGURE_BOTTOM),
                       fill=skin)


def _draw_bodice(mask: ImageDraw.ImageDraw, frame: _Frame) -> None:
    mask.polygon(frame.points(_BODICE), fill=255)


def _draw_sleeves(mask: ImageDraw.ImageDraw, frame: _Frame, value: int, arm_angle: float) -> None:
    length = _SLEEVE_LENGTHS[value]
    if length == 0.0:
        return
    for side in (-1.0, 1.0):
        mask.polygon(frame.points(_arm_quad(side, arm_angle, -1.0, length, _SLEEVE_HALF_WIDTH)), fill=255)


def _draw_skirt(mask: ImageDraw.ImageDraw, frame: _Frame, value: int) -> None:
    hem_y = _SKIRT_HEM_Y[value]
    hem_half_width = _WAIST_HALF_WIDTH + (hem_y - _WAIST_Y) * _SKIRT_FLARE
    mask.polygon(
        frame.points([(-_WAIST_HALF_WIDTH, _WAIST_Y - 1.0), (_WAIST_HALF_WIDTH, _WAIST_Y - 1.0),
                      (hem_half_width, hem_y), (-hem_half_width, hem_y)]),
        fill=255,
    )


def _cut_neckline(mask: ImageDraw.ImageDraw, frame: _Frame, value: int) -> None:
    """Remove the neckline shape from the garment mask so the skin behind shows through."""
    name = GARMENT_ATTRIBUTES[2][1][value]
    # Start slightly above the shoulder line so the cut-out opens cleanly at the top edge.
    top = -1.0
    # Besides the outline, the values differ in width and depth (a small high crew neck,
    # a deep narrow V, a large square notch, a wide shallow boat) so that they remain
    # separable when the figure is only a few dozen pixels tall.
    if name == "round":
        mask.ellipse(frame.box(-8.0, -8.0, 8.0, 8.0), fill=0)
    elif name == "v":
        mask.polygon(frame.points([(-10.0, top), (10.0, top), (0.0, 23.0)]), fill=0)
    elif name == "square":
        mask.rectangle(frame.box(-11.0, top, 11.0, 16.0), fill=0)
    else:
        mask.ellipse(frame.box(-17.0, -5.0, 17.0, 5.0), fill=0)


def _check_values(values: dict[str, int]) -> None:
    for name, value_names in GARMENT_ATTRIBUTES:
        if name not in values:
            raise ValueError(f"missing value for attribute {name!r}")
        if not 0 <= values[name] < len(value_names):
            raise ValueError(f"value {values[name]} out of range for attribute {name!r}")


def render_garment(values: dict[str, int], size: int, rng: np.random.Generator, shot: str = "full",
                   fabric: int | None = None) -> Image.Image:
    """Render one dress-like figure showing the given value index for every attribute.

    ``values`` maps every attribute name of :data:`GARMENT_ATTRIBUTES` to a value
    index. All nuisance factors (colours, background, placement, scale, aspect, arm
    angle, pattern period/phase) are drawn from ``rng``. ``shot`` is a key of ``SHOTS``.
    ``fabric`` (an index into ``FABRIC_COLOURS``) pins the garment's colour family; by
    default it is drawn at random too.
    """
    _check_values(values)
    fabric, pattern, skin, background = _pick_colours(rng, fabric)
    frame = _Frame(size, rng, shot)
    arm_angle = math.radians(rng.uniform(12.0, 24.0))

    if shot == "catalogue":
        image = Image.new("RGB", (size, size), _CATALOGUE_BACKGROUND)
    else:
        image = _background(size, background, rng)
    _draw_body(ImageDraw.Draw(image), frame, skin, arm_angle)

    mask = Image.new("L", (size, size), 0)
    mask_draw = ImageDraw.Draw(mask)
    _draw_sleeves(mask_draw, frame, values["sleeve_length"], arm_angle)
    _draw_skirt(mask_draw, frame, values["skirt_length"])
    _draw_bodice(mask_draw, frame)
    _cut_neckline(mask_draw, frame, values["neckline_design"])

    image.paste(_texture(size, values["texture"], fabric, pattern, rng), (0, 0), mask)
    return image
