"""``rolefusion-data``: what a data config reads, cleans and drops, without training.

Takes the same overrides as ``rolefusion-train``, e.g.
``rolefusion-data data=hateful_memes data.root=/data/hateful_memes``. Prints examples per split,
drops by reason, the class distribution, text lengths and image sizes, and writes them as
``report.json`` beside ``samples.png``, a grid of training images as the model sees them with
their text and label.
"""

from __future__ import annotations

import json
import logging
import random
import textwrap
from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from rolefusion.config.checks import check_targets
from rolefusion.data.cleaning import Example
from rolefusion.data.datamodule import RoleFusionDataModule
from rolefusion.runs.build import prepared_datamodule
from rolefusion.runs.data_modalities import drop_absent_modalities

log = logging.getLogger(__name__)

PERCENTILES = (5, 50, 95, 99)


def _spread(values: list[float]) -> dict[str, float]:
    """Percentiles and extremes of ``values`` (empty: nothing to say)."""
    if not values:
        return {}
    points = np.percentile(values, PERCENTILES)
    return {"min": float(min(values)), **{f"p{p}": float(v) for p, v in zip(PERCENTILES, points,
            strict=True)}, "max": float(max(values))}  # fmt: skip


def text_lengths(datamodule: RoleFusionDataModule, examples: list[Example]) -> dict[str, Any]:
    """Characters and tokens per text, and the share the tokenizer truncates."""
    texts = [e.record.text for e in examples if e.record.text is not None]
    if not texts:
        return {}
    tokens = [len(encoding.ids) for encoding in datamodule.tokenizer.encode_batch(texts)]
    limit = datamodule.max_text_length
    return {
        "characters": _spread([len(t) for t in texts]),
        "tokens": _spread(tokens),
        "truncated_share": sum(n > limit for n in tokens) / len(tokens),
        "max_text_length": limit,
    }


def image_sizes(examples: list[Example]) -> dict[str, Any]:
    """Widths and heights of the files (before resizing), and the commonest sizes."""
    sizes = [e.image_size for e in examples if e.image_size is not None]
    if not sizes:
        return {}
    return {
        "width": _spread([w for w, _ in sizes]),
        "height": _spread([h for _, h in sizes]),
        "most_common": [[f"{w}x{h}", n] for (w, h), n in Counter(sizes).most_common(5)],
        "not_square_share": sum(w != h for w, h in sizes) / len(sizes),
    }


def describe(datamodule: RoleFusionDataModule) -> dict[str, Any]:
    """Everything ``rolefusion-data`` reports, as JSON-ready values."""
    return datamodule.summary() | {
        "text_lengths": {s: text_lengths(datamodule, e) for s, e in datamodule.examples.items()},
        "image_sizes": {s: image_sizes(e) for s, e in datamodule.examples.items()},
    }


def print_report(report: dict[str, Any]) -> None:
    console = Console()
    splits = list(report["examples"])
    counts = Table(title=f"examples ({report['task']})", title_justify="left")
    for column in ("class", *splits):
        counts.add_column(column, justify="left" if column == "class" else "right")
    for name in report["classes"]:
        counts.add_row(name, *(str(report["class_counts"][s][name]) for s in splits))
    counts.add_section()
    counts.add_row("examples", *(str(report["examples"][s]) for s in splits))
    counts.add_row(
        "dropped", *(str(report["dropped"].get(s, {}).get("dropped", 0)) for s in splits)
    )
    console.print(counts)
    for kind in ("dropped", "found"):
        for split, counted in report["dropped" if kind == "dropped" else "duplicates"].items():
            for reason, n in counted["by_reason"].items():
                console.print(f"[yellow]{split}: {kind} {n}: {reason}[/] e.g. "
                              f"{counted['examples'][reason][0]}")  # fmt: skip
    spreads = Table(title="lengths and sizes (train)", title_justify="left")
    for column in ("measure", "min", *(f"p{p}" for p in PERCENTILES), "max"):
        spreads.add_column(column, justify="left" if column == "measure" else "right")
    train_text = report["text_lengths"].get("train", {})
    train_images = report["image_sizes"].get("train", {})
    rows = {
        "text characters": train_text.get("characters"),
        "text tokens": train_text.get("tokens"),
        "image width": train_images.get("width"),
        "image height": train_images.get("height"),
    }
    for measure, spread in rows.items():
        if spread:
            spreads.add_row(measure, *(f"{v:g}" for v in spread.values()))
    console.print(spreads)
    if train_text:
        console.print(f"texts over data.max_text_length={train_text['max_text_length']} tokens "
                      f"(truncated): {train_text['truncated_share']:.1%}")  # fmt: skip


def sample_grid(datamodule: RoleFusionDataModule, samples: int, seed: int, path: Path) -> None:
    """Training images as the model gets them (decoded, resized) with their text and label,
    drawn round-robin over the classes so that rare classes show too."""
    examples = datamodule.examples["train"]
    by_class: dict[str, list[Example]] = {}
    for example in examples:
        label = example.record.label
        key = " + ".join(label) if isinstance(label, tuple) else str(label)
        by_class.setdefault(key, []).append(example)
    rng = random.Random(seed)
    pools = [rng.sample(pool, len(pool)) for _, pool in sorted(by_class.items())]
    chosen: list[Example] = []
    while len(chosen) < min(samples, len(examples)):
        for pool in pools:
            if pool and len(chosen) < samples:
                chosen.append(pool.pop())
    columns = min(4, len(chosen))
    rows = -(-len(chosen) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.2 * columns, 3.9 * rows), squeeze=False)
    for axis in axes.flat:
        axis.axis("off")
    for axis, example in zip(axes.flat, chosen, strict=False):
        record = example.record
        if record.image is not None:
            image, _ = datamodule.cleaner.load_image(record)
            axis.imshow(image.permute(1, 2, 0).numpy())
        label = " + ".join(record.label) if isinstance(record.label, tuple) else record.label
        text = textwrap.shorten(record.text or "", 90, placeholder=" ...")
        axis.set_title(f"{label}\n" + "\n".join(textwrap.wrap(text, 30)[:3]), fontsize=8)
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=100)
    plt.close(figure)


def run(cfg: DictConfig) -> None:
    check_targets(cfg)
    drop_absent_modalities(cfg)
    datamodule = prepared_datamodule(cfg)
    report = describe(datamodule)
    print_report(report)
    out_dir = Path(cfg.inspect.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    sample_grid(datamodule, cfg.inspect.samples, cfg.inspect.seed, out_dir / "samples.png")
    Console().print(f"written: {out_dir / 'report.json'}, {out_dir / 'samples.png'}")
