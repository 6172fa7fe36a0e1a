"""Image: a look is drawn. A figure in its costume with its prop, on a cluttered background.

The figure is drawn on its own transparent layer in units of its height ``s``: it is 0.8 s wide,
the body is centred at u = BODY_U, and the prop sits in u in [0.52, 0.78]. Flipping the layer
puts the prop on the left.
"""

from __future__ import annotations

import colorsys
from collections.abc import Callable

import numpy as np
from PIL import Image, ImageDraw

from rolefusion.data.roleplay_scenes.roles import RGB, Look

SKIN_TONES: tuple[RGB, ...] = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
DISTRACTOR_GREYS: tuple[int, ...] = (240, 185, 115, 45)
"""Achromatic distractor shades: never a costume colour."""

FIGURE_ASPECT = 0.8
BODY_U = 0.28
Draw = ImageDraw.ImageDraw


def _xy(s: float, *uv: float) -> list[float]:
    """Scale unit coordinates by the figure height."""
    return [c * s for c in uv]


# The props. Each has a fixed colour and silhouette of its own, held in the prop column (the crown
# sits on the head), so that at 32 px a look is still told apart by prop as well as by hue.


def _draw_sword(draw: Draw, s: float) -> None:
    draw.polygon(
        _xy(s, 0.63, 0.72, 0.63, 0.2, 0.65, 0.14, 0.67, 0.2, 0.67, 0.72), fill=(205, 205, 215)
    )
    draw.rectangle(_xy(s, 0.56, 0.71, 0.74, 0.76), fill=(190, 150, 40))
    draw.rectangle(_xy(s, 0.63, 0.76, 0.67, 0.88), fill=(95, 55, 25))


def _draw_staff(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.14, 0.65, 0.99), fill=(120, 80, 40), width=max(1, round(0.045 * s)))
    draw.ellipse(_xy(s, 0.58, 0.04, 0.72, 0.18), fill=(225, 245, 255), outline=(150, 200, 230))


def _draw_crown(draw: Draw, s: float) -> None:
    u = BODY_U
    points = (u - 0.11, 0.11, u - 0.11, 0.01, u - 0.055, 0.06, u, 0.0, u + 0.055, 0.06,
              u + 0.11, 0.01, u + 0.11, 0.11)  # fmt: skip
    draw.polygon(_xy(s, *points), fill=(245, 195, 35), outline=(160, 110, 10))


def _draw_shield(draw: Draw, s: float) -> None:
    points = (0.52, 0.36, 0.78, 0.36, 0.78, 0.56, 0.65, 0.74, 0.52, 0.56)
    draw.polygon(
        _xy(s, *points), fill=(170, 170, 182), outline=(70, 70, 80), width=max(1, round(0.02 * s))
    )
    draw.ellipse(_xy(s, 0.61, 0.45, 0.69, 0.53), fill=(90, 90, 100))


def _draw_lantern(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.4, 0.65, 0.48), fill=(50, 50, 50), width=max(1, round(0.02 * s)))
    draw.rectangle(_xy(s, 0.57, 0.47, 0.73, 0.68), fill=(55, 55, 60))
    draw.rectangle(_xy(s, 0.59, 0.5, 0.71, 0.65), fill=(255, 238, 150))


def _draw_book(draw: Draw, s: float) -> None:
    draw.rectangle(_xy(s, 0.53, 0.46, 0.79, 0.66), fill=(110, 60, 30))
    draw.rectangle(_xy(s, 0.55, 0.48, 0.655, 0.64), fill=(250, 248, 235))
    draw.rectangle(_xy(s, 0.665, 0.48, 0.77, 0.64), fill=(250, 248, 235))


def _draw_bow(draw: Draw, s: float) -> None:
    width = max(1, round(0.04 * s))
    draw.arc(_xy(s, 0.44, 0.16, 0.76, 0.92), start=-75, end=75, fill=(125, 75, 30), width=width)
    # The string joins the arc's ends: centre (0.6, 0.54), radii (0.16, 0.38), angles +-75 deg.
    draw.line(_xy(s, 0.641, 0.173, 0.641, 0.907), fill=(235, 235, 235), width=max(1, width // 3))


def _draw_flag(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.58, 0.12, 0.58, 0.99), fill=(90, 70, 50), width=max(1, round(0.03 * s)))
    draw.polygon(
        _xy(s, 0.58, 0.12, 0.79, 0.21, 0.58, 0.3), fill=(245, 245, 245), outline=(90, 90, 90)
    )


def _draw_goblet(draw: Draw, s: float) -> None:
    draw.polygon(_xy(s, 0.55, 0.44, 0.75, 0.44, 0.69, 0.57, 0.61, 0.57), fill=(220, 175, 50))
    draw.rectangle(_xy(s, 0.635, 0.57, 0.665, 0.66), fill=(220, 175, 50))
    draw.rectangle(_xy(s, 0.58, 0.66, 0.72, 0.7), fill=(190, 145, 35))


def _draw_axe(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.6, 0.16, 0.6, 0.98), fill=(110, 70, 35), width=max(1, round(0.04 * s)))
    draw.pieslice(
        _xy(s, 0.48, 0.16, 0.8, 0.46), start=-90, end=90, fill=(175, 178, 188), outline=(80, 80, 90)
    )


def _draw_key(draw: Draw, s: float) -> None:
    width = max(1, round(0.035 * s))
    gold = (225, 180, 40)
    draw.ellipse(_xy(s, 0.57, 0.3, 0.73, 0.46), outline=gold, width=width)
    draw.line(_xy(s, 0.65, 0.46, 0.65, 0.8), fill=gold, width=width)
    draw.line(_xy(s, 0.65, 0.72, 0.73, 0.72), fill=gold, width=width)
    draw.line(_xy(s, 0.65, 0.79, 0.73, 0.79), fill=gold, width=width)


def _draw_flower(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.36, 0.65, 0.8), fill=(40, 90, 40), width=max(1, round(0.03 * s)))
    for du, dv in (
        (0.0, -0.07),
        (0.067, -0.022),
        (0.041, 0.057),
        (-0.041, 0.057),
        (-0.067, -0.022),
    ):
        draw.ellipse(_xy(s, 0.605 + du, 0.285 + dv, 0.695 + du, 0.375 + dv), fill=(250, 250, 250))
    draw.ellipse(_xy(s, 0.62, 0.3, 0.68, 0.36), fill=(250, 210, 40))


PropDrawer = Callable[[Draw, float], None]
PROPS: dict[str, tuple[PropDrawer, tuple[float, float] | None]] = {
    # name: (drawer, where the hand holds it in unit coordinates, or None for no arm)
    "sword": (_draw_sword, (0.65, 0.82)),
    "staff": (_draw_staff, (0.65, 0.55)),
    "crown": (_draw_crown, None),
    "shield": (_draw_shield, (0.56, 0.5)),
    "lantern": (_draw_lantern, (0.65, 0.42)),
    "book": (_draw_book, (0.56, 0.58)),
    "bow": (_draw_bow, (0.6, 0.54)),
    "flag": (_draw_flag, (0.58, 0.55)),
    "goblet": (_draw_goblet, (0.62, 0.52)),
    "axe": (_draw_axe, (0.6, 0.6)),
    "key": (_draw_key, (0.65, 0.62)),
    "flower": (_draw_flower, (0.65, 0.62)),
}

COSTUME_SHAPES: dict[str, tuple[float, ...]] = {
    # polygon (or ellipse box for "ellipse") in unit coordinates, body centred at BODY_U
    "triangle": (BODY_U, 0.25, BODY_U + 0.22, 0.99, BODY_U - 0.22, 0.99),
    "rectangle": (
        BODY_U - 0.15,
        0.28,
        BODY_U + 0.15,
        0.28,
        BODY_U + 0.15,
        0.96,
        BODY_U - 0.15,
        0.96,
    ),
    "trapezoid": (
        BODY_U - 0.09,
        0.28,
        BODY_U + 0.09,
        0.28,
        BODY_U + 0.23,
        0.99,
        BODY_U - 0.23,
        0.99,
    ),
    "ellipse": (BODY_U - 0.17, 0.27, BODY_U + 0.17, 0.99),
}


def _jitter(rgb: RGB, rng: np.random.Generator, amount: int = 14) -> RGB:
    """A small per-channel colour change, so no two costumes of a look are pixel-identical."""
    shifted = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(shifted[0]), int(shifted[1]), int(shifted[2]))


def _muted_colour(rng: np.random.Generator) -> RGB:
    """A desaturated colour of any hue: never confusable with a saturated costume."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.06, 0.28), rng.uniform(0.38, 0.92))
    return (round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255))


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """A flat colour, a linear gradient or stripes (straight or diagonal), in muted colours."""
    first = Image.new("RGB", (size, size), _muted_colour(rng))
    second = Image.new("RGB", (size, size), _muted_colour(rng))
    kind = rng.integers(3)
    if kind == 0:
        return first
    if kind == 1:
        mask = Image.linear_gradient("L").resize((size, size))
    else:
        period = rng.uniform(size / 10, size / 3)
        slope = int(rng.integers(-1, 2))
        # Stripe value along i + slope * j, looked up from one 1-D profile (cheap at any size).
        profile = ((np.arange(-size, 2 * size) // period) % 2 * 255).astype(np.uint8)
        offset = np.add.outer(np.arange(size), slope * np.arange(size)) + size
        mask = Image.fromarray(profile[offset], mode="L")
    if rng.random() < 0.5:
        mask = mask.transpose(Image.Transpose.TRANSPOSE)
    return Image.composite(second, first, mask)


def _draw_distractor(draw: Draw, size: int, rng: np.random.Generator) -> None:
    """A small grey shape somewhere in the scene: clutter that carries no information."""
    grey = int(
        np.clip(
            DISTRACTOR_GREYS[rng.integers(len(DISTRACTOR_GREYS))] + rng.integers(-10, 11), 0, 255
        )
    )
    radius = rng.uniform(0.05, 0.11) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse(box, fill=(grey, grey, grey))
    elif kind == 1:
        draw.rectangle(box, fill=(grey, grey, grey))
    else:
        draw.polygon(
            [cx, cy - radius, cx + radius, cy + radius, cx - radius, cy + radius], fill=(grey,) * 3
        )


def _draw_figure(look: Look, height: int, rng: np.random.Generator) -> Image.Image:
    """The figure on a transparent layer: head, costume body, and the prop held at its side."""
    s = float(height)
    layer = Image.new("RGBA", (round(FIGURE_ASPECT * s), height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    skin = _jitter(SKIN_TONES[rng.integers(len(SKIN_TONES))], rng, amount=8)
    costume = _jitter(look.rgb, rng)
    prop, hand = PROPS[look.prop]
    if hand is not None:  # the arm goes first so the body covers the shoulder
        draw.line(_xy(s, BODY_U + 0.06, 0.38, *hand), fill=skin, width=max(1, round(0.05 * s)))
    shape = _xy(s, *COSTUME_SHAPES[look.shape])
    outline = tuple(c // 2 for c in costume)
    line_width = max(1, round(0.02 * s))
    if look.shape == "ellipse":
        draw.ellipse(shape, fill=costume, outline=outline, width=line_width)
    else:
        draw.polygon(shape, fill=costume, outline=outline, width=line_width)
    draw.ellipse(_xy(s, BODY_U - 0.1, 0.07, BODY_U + 0.1, 0.27), fill=skin)
    prop(draw, s)
    return layer


def supersampling(image_size: int) -> int:
    """Scenes are drawn 2-4x larger and downsampled with LANCZOS, for smooth edges."""
    return min(4, max(2, 256 // image_size))


def render_image(look: Look, image_size: int, rng: np.random.Generator) -> Image.Image:
    """A scene: varied background, 0-2 distractors, and the figure fully inside the frame."""
    size = image_size * supersampling(image_size)
    scene = _background(size, rng)
    draw = ImageDraw.Draw(scene)
    for _ in range(rng.integers(3)):
        _draw_distractor(draw, size, rng)
    height = int(rng.uniform(0.55, 0.9) * size)
    figure = _draw_figure(look, height, rng)
    if rng.random() < 0.5:
        figure = figure.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    margin = size // 32
    x = int(rng.integers(margin, size - figure.width - margin + 1))
    y = int(rng.integers(margin, size - figure.height - margin + 1))
    scene.paste(figure, (x, y), figure)
    return scene.resize((image_size, image_size), Image.Resampling.LANCZOS, reducing_gap=2.0)


def render_pair(left: Look, right: Look, image_size: int, rng: np.random.Generator) -> Image.Image:
    """Two figures, one per half of the scene and fully inside it, on the same kind of scene.

    They are drawn smaller than a lone figure (at most as wide as a half), so which side a figure
    stands on is never ambiguous.
    """
    size = image_size * supersampling(image_size)
    scene = _background(size, rng)
    draw = ImageDraw.Draw(scene)
    for _ in range(rng.integers(3)):
        _draw_distractor(draw, size, rng)
    margin = size // 32
    half = size // 2
    tallest = min((half - 2 * margin) / FIGURE_ASPECT, 0.9 * size)
    for look, left_edge in ((left, 0), (right, half)):
        figure = _draw_figure(look, int(rng.uniform(0.75, 1.0) * tallest), rng)
        if rng.random() < 0.5:
            figure = figure.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        x = int(rng.integers(left_edge + margin, left_edge + half - figure.width - margin + 1))
        y = int(rng.integers(margin, size - figure.height - margin + 1))
        scene.paste(figure, (x, y), figure)
    return scene.resize((image_size, image_size), Image.Resampling.LANCZOS, reducing_gap=2.0)
