"""Render one row of sample scenes per interaction family: each card shows the image, the line
and the label, with what decides the role underlined in words, so a reader sees what each family
asks of a model.

    .venv/bin/python scripts/interaction_grid.py   # writes docs/images/interaction_families.png

The examples are generated through :class:`RolePlayScenes` itself (into a temporary directory),
so the picture shows exactly what training reads. Pillow only.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import textwrap
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from rolefusion.data.roleplay_scenes import LOOKS, RolePlayScenes
from rolefusion.data.roleplay_scenes.interactions import INTERACTIONS

PAD = 8
LABEL_WIDTH = 150
TEXT_LINES = 5
BACKGROUND = (250, 250, 248)
INK = (30, 30, 30)
MUTED_INK = (110, 110, 110)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--output", type=Path, default=Path("docs/images/interaction_families.png"))
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--per-family", type=int, default=6, help="cards per family")
    parser.add_argument("--zoom", type=int, default=2, help="nearest-neighbour upscaling")
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args()


def why(interaction: str, record: dict) -> str:
    """What decides the role in this example, in words."""
    if interaction == "synergy":
        bit = int(record["look"]) % 2
        order = 0 if record["opener"] == "greeting" else 1
        return f"colour {bit} xor order {order} = {bit ^ order}"
    if interaction == "grounding":
        side = record["costumes"].index(record["addressee"])
        colour = LOOKS[int(record["looks"][side])].colour
        return f"{record['addressee']} -> the {colour} one"
    return f"{LOOKS[int(record['look'])].colour} + voice {record['voice']}"


def samples(root: Path, interaction: str, count: int, args: argparse.Namespace) -> list[dict]:
    scenes = RolePlayScenes(
        root / interaction, num_train=count, num_val=1, num_test=1, image_size=args.image_size,
        seed=args.seed, interaction=interaction,
    )  # fmt: skip
    manifest = scenes.prepare()["train"]
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:
        record["image"] = manifest.parent / record["image"]
    return records


def draw_card(canvas: Image.Image, left: int, top: int, record: dict, interaction: str,
              zoom: int) -> None:  # fmt: skip
    draw = ImageDraw.Draw(canvas)
    body = ImageFont.load_default(size=11)
    with Image.open(record["image"]) as image:
        tile = image.convert("RGB").resize((image.width * zoom, image.height * zoom), 0)
    canvas.paste(tile, (left, top))
    y = top + tile.height + 4
    draw.text((left, y), f"label: {record['clean_label']}", font=body, fill=INK)
    draw.text((left, y + 14), why(interaction, record), font=body, fill=INK)
    wrapped = textwrap.wrap(str(record["text"]), width=max(20, tile.width // 6))[:TEXT_LINES]
    draw.multiline_text((left, y + 30), "\n".join(wrapped), font=body, fill=MUTED_INK, spacing=2)


def main() -> None:
    args = parse_args()
    tile = args.image_size * args.zoom
    card_height = tile + 34 + TEXT_LINES * 13
    row_height = card_height + 2 * PAD
    width = LABEL_WIDTH + args.per_family * (tile + 2 * PAD)
    canvas = Image.new("RGB", (width, PAD + row_height * len(INTERACTIONS)), BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    title = ImageFont.load_default(size=15)
    with tempfile.TemporaryDirectory() as root:
        for row, interaction in enumerate(INTERACTIONS):
            top = PAD + row * row_height
            draw.text((PAD, top + 4), interaction, font=title, fill=INK)
            for k, record in enumerate(samples(Path(root), interaction, args.per_family, args)):
                draw_card(canvas, LABEL_WIDTH + k * (tile + 2 * PAD), top, record, interaction,
                          args.zoom)  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    canvas.save(args.output)
    print(f"wrote {args.output} ({canvas.width}x{canvas.height})")


if __name__ == "__main__":
    main()
