"""Render a sample grid of the synthetic role-play scenes: one row per role, with its look, voice,
a few images and one utterance, so a reader sees at a glance why neither modality alone suffices.

    .venv/bin/python scripts/roleplay_scenes_grid.py   # writes docs/images/roleplay_scenes_grid.png
    .venv/bin/python scripts/roleplay_scenes_grid.py --image-size 32 --output /tmp/grid32.png

The examples are generated through :class:`RolePlayScenes` itself (into a temporary directory) and
grouped by their clean role, so the picture shows exactly what training reads. Pillow only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from rolefusion.data.roleplay_scenes import LOOKS, VOICES, RolePlayScenes

PAD = 8
LABEL_WIDTH = 250
TEXT_WIDTH = 330
BACKGROUND = (250, 250, 248)
INK = (30, 30, 30)
MUTED_INK = (110, 110, 110)


def parse_args() -> argparse.Namespace:
    """The knobs of the picture; the data set's own defaults apply otherwise."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/images/roleplay_scenes_grid.png"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--per-role", type=int, default=6, help="images shown per role")
    parser.add_argument("--zoom", type=int, default=2, help="nearest-neighbour upscaling")
    parser.add_argument("--num-roles", type=int, default=8)
    parser.add_argument("--ambiguity", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def examples_by_role(root: Path, args: argparse.Namespace) -> dict[str, list[dict[str, object]]]:
    """Generate a training split of ``per_role`` examples per role and group it by clean role."""
    scenes = RolePlayScenes(
        root,
        num_train=args.per_role * args.num_roles,
        num_val=1,
        num_test=1,
        image_size=args.image_size,
        num_roles=args.num_roles,
        ambiguity=args.ambiguity,
        seed=args.seed,
    )
    manifest = scenes.prepare()["train"]
    groups: dict[str, list[dict[str, object]]] = {role.name: [] for role in scenes.roles}
    for line in manifest.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        record["image"] = manifest.parent / record["image"]
        groups[record["clean_label"]].append(record)
    return groups


def draw_row(
    canvas: Image.Image, top: int, name: str, records: list[dict[str, object]], zoom: int
) -> None:
    """One role: its name, look and voice; its images; one of its utterances."""
    draw = ImageDraw.Draw(canvas)
    title, body = ImageFont.load_default(size=15), ImageFont.load_default(size=12)
    look, voice = LOOKS[int(records[0]["look"])], VOICES[int(records[0]["voice"])]
    draw.text((PAD, top + 4), name, font=title, fill=INK)
    draw.text((PAD, top + 26), f"look {records[0]['look']}: {look.describe()}", font=body, fill=INK)
    draw.text((PAD, top + 44), f"voice {records[0]['voice']}: {voice.style}", font=body, fill=INK)
    draw.text((PAD, top + 62), f'"{voice.catch_phrases[0]}"', font=body, fill=MUTED_INK)
    left = LABEL_WIDTH
    for record in records:
        with Image.open(record["image"]) as image:
            tile = image.convert("RGB").resize((image.width * zoom, image.height * zoom), 0)
        canvas.paste(tile, (left, top))
        left += tile.width + PAD
    wrapped = textwrap.fill(str(records[0]["text"]), width=44)
    draw.multiline_text((left + PAD, top + 4), wrapped, font=body, fill=MUTED_INK, spacing=4)


def render_grid(
    groups: dict[str, list[dict[str, object]]], image_size: int, zoom: int
) -> Image.Image:
    """Stack one row per role on a light canvas."""
    tile = image_size * zoom
    per_role = max(len(records) for records in groups.values())
    row_height = max(tile, 80) + PAD
    width = LABEL_WIDTH + per_role * (tile + PAD) + TEXT_WIDTH
    canvas = Image.new("RGB", (width, PAD + row_height * len(groups)), BACKGROUND)
    for row, (name, records) in enumerate(groups.items()):
        draw_row(canvas, PAD + row * row_height, name, records, zoom)
    return canvas


def main() -> None:
    """Generate, group, draw, save."""
    args = parse_args()
    with tempfile.TemporaryDirectory() as root:
        groups = examples_by_role(Path(root), args)
        grid = render_grid(groups, args.image_size, args.zoom)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    grid.save(args.output)
    print(f"wrote {args.output} ({grid.width}x{grid.height})")


if __name__ == "__main__":
    main()
