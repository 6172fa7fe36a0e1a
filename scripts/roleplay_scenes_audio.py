"""Render the sounds of the synthetic role-play scenes as log-mel spectrograms: one row per sound,
with its register, timbre and rhythm, and a few example clips, so a reader sees what the audio
encoder sees and why the sounds are told apart.

    .venv/bin/python scripts/roleplay_scenes_audio.py  # docs/images/roleplay_scenes_audio.png
    .venv/bin/python scripts/roleplay_scenes_audio.py --per-sound 3 --output /tmp/sounds.png

Clips come from the generator's own :func:`render_audio` (every defined sound, not only those a
given data set uses); spectrograms from the encoder's :class:`LogMelSpectrogram`, low frequencies
at the bottom. Pillow only.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont

from rolefusion.data.roleplay_scenes import SOUNDS, Sound, render_audio
from rolefusion.models.encoders.audio import LogMelSpectrogram

PAD = 8
LABEL_WIDTH = 230
BACKGROUND = (250, 250, 248)
INK = (30, 30, 30)
MUTED_INK = (110, 110, 110)
# A perceptually ordered dark-blue -> teal -> yellow ramp (viridis-like), interpolated linearly.
RAMP = np.array([(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)])


def parse_args() -> argparse.Namespace:
    """The knobs of the picture."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--output", type=Path, default=Path("docs/images/roleplay_scenes_audio.png")
    )
    parser.add_argument("--per-sound", type=int, default=5, help="clips shown per sound")
    parser.add_argument("--sample-rate", type=int, default=8000)
    parser.add_argument("--seconds", type=float, default=0.5)
    parser.add_argument("--zoom", type=int, default=3, help="pixels per frame and per mel bin")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def colour(values: np.ndarray) -> Image.Image:
    """A ``[n_mels, frames]`` array as an RGB image, low mel bins at the bottom."""
    scaled = (values - values.min()) / max(float(np.ptp(values)), 1e-9) * (len(RAMP) - 1)
    low = np.clip(np.floor(scaled).astype(int), 0, len(RAMP) - 2)
    weight = (scaled - low)[..., None]
    rgb = (1 - weight) * RAMP[low] + weight * RAMP[low + 1]
    return Image.fromarray(np.flipud(rgb).round().astype(np.uint8), mode="RGB")


def draw_row(
    canvas: Image.Image, top: int, index: int, sound: Sound, tiles: list[Image.Image]
) -> None:
    """One sound: its name and description, then its spectrograms."""
    draw = ImageDraw.Draw(canvas)
    title, body = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    low, high = sound.pitch_hz
    short, long = sound.syllable_s
    draw.text((PAD, top + 4), f"sound {index}: {sound.name}", font=title, fill=INK)
    draw.text(
        (PAD, top + 26), f"{sound.register} register, {low:.0f}-{high:.0f} Hz", font=body, fill=INK
    )
    draw.text((PAD, top + 44), f"{sound.timbre} timbre", font=body, fill=INK)
    rhythm = f"{sound.rhythm}: syllables {1000 * short:.0f}-{1000 * long:.0f} ms"
    draw.text((PAD, top + 62), rhythm, font=body, fill=MUTED_INK)
    left = LABEL_WIDTH
    for tile in tiles:
        canvas.paste(tile, (left, top))
        left += tile.width + PAD


def main() -> None:
    """Render, transform, draw, save."""
    args = parse_args()
    spectrogram = LogMelSpectrogram(sample_rate=args.sample_rate)
    rows = []
    for index, sound in enumerate(SOUNDS):
        clips = [
            render_audio(
                sound,
                args.sample_rate,
                args.seconds,
                np.random.default_rng([args.seed, index, i, 5]),
            )
            for i in range(args.per_sound)
        ]
        with torch.no_grad():
            log_mel = spectrogram(torch.as_tensor(np.stack(clips), dtype=torch.float32)[:, None])
        rows.append([colour(m.numpy()) for m in log_mel])
    tile = rows[0][0]
    size = (tile.width * args.zoom, tile.height * args.zoom)
    rows = [[t.resize(size, Image.Resampling.NEAREST) for t in row] for row in rows]
    row_height = max(size[1], 84) + PAD
    width = LABEL_WIDTH + args.per_sound * (size[0] + PAD)
    canvas = Image.new("RGB", (width, PAD + row_height * len(rows)), BACKGROUND)
    for index, (sound, tiles) in enumerate(zip(SOUNDS, rows, strict=True)):
        draw_row(canvas, PAD + index * row_height, index, sound, tiles)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.output)
    print(f"wrote {args.output} ({canvas.width}x{canvas.height})")


if __name__ == "__main__":
    main()
