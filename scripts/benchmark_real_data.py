"""Figures on real text: MELD's emotions and speakers, four text encoders, three seeds each
(docs/real_data.md, docs/real_data.json, docs/images/real_data_f1.png).

For each label (``data/label=emotion``: 7 emotions; ``data/label=speaker``: the six friends and
``other``) and each text encoder, one Hydra multirun over the seeds on MELD's released CSVs
(text only: the preset finds no frames and says so):

- ``lstm`` and ``transformer``: trained from scratch with a tokenizer fit on the training split;
- ``frozen``: all-MiniLM-L6-v2 with its weights fixed, a linear projection and head trained;
- ``finetuned``: the same model with every weight trained, at a fine-tuning learning rate.

Every run picks its checkpoint by validation F1 (weighted, ``model.average=weighted``, the
figure MELD's papers report) and is tested once; the scores are recomputed from each run's
``predictions.csv`` (weighted F1, macro F1, accuracy) and given as mean ± std over seeds
beside the published utterance-level figures. Class balance comes from the runs' ``data.json``.

Finished runs are not run again (a sweep directory that holds a job's ``metrics.json`` skips
it), so an interrupted benchmark continues where it stopped.

    .venv/bin/python scripts/benchmark_real_data.py --meld /path/to/MELD   # hours on 2 CPU cores
    .venv/bin/python scripts/benchmark_real_data.py --meld /path/to/MELD --labels emotion \
        --encoders lstm --seeds 1                                          # a quick look
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from datetime import date
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
import pandas as pd

from rolefusion.runs.sweep_jobs import read_jobs

matplotlib.use("Agg")
import matplotlib.pyplot as plt

ROOT = Path(__file__).resolve().parents[1]
LABELS = ("emotion", "speaker")
ENCODERS: dict[str, list[str]] = {
    "lstm": ["model/text_encoder=lstm", "trainer.max_epochs=6"],
    "transformer": ["model/text_encoder=transformer", "trainer.max_epochs=6"],
    "frozen": ["model/text_encoder=pretrained", "optimizer.lr=0.001", "trainer.max_epochs=6"],
    # Two epochs (the cosine schedule halves the rate for the second): about 7 minutes each on
    # 2 CPU cores, most of this script's time. One epoch reached 55.4 weighted F1 (one seed).
    "finetuned": [
        "model/text_encoder=pretrained",
        "model.text_encoder.freeze=false",
        "optimizer.lr=5e-5",
        "data.batch_size=32",
        "trainer.max_epochs=2",
    ],
}
COMMON = [
    "model/image_encoder=none",  # said explicitly: the figure is a text model's by design
    "model/fusion=text_only",
    "model.average=weighted",
    "data.max_text_length=48",  # 0.2% of MELD's training utterances are longer (MiniLM ids)
    "attribution=false",
    "logger=csv",
]
PUBLISHED = {
    "emotion": [
        ("RoBERTa, fine-tuned (COSMIC paper's table)", 62.02),
        ("text-CNN (MELD paper)", 55.0),
    ],
}
"""Published weighted F1 (%) on MELD's 7 emotions, one utterance at a time, no context."""


def run_sweep(meld: Path, label: str, encoder: str, seeds: list[int], sweep_dir: Path) -> None:
    """Train and test one encoder on one label over ``seeds`` (the runs not finished yet)."""
    command = [
        sys.executable, "-m", "rolefusion.train", "-m",
        "data=meld", f"data.root={meld}", f"data/label={label}",
        *COMMON, *ENCODERS[encoder],
        "seed=" + ",".join(str(s) for s in seeds),
        f"hydra.sweep.dir={sweep_dir}",
    ]  # fmt: skip
    subprocess.run(command, cwd=ROOT, check=True)


def scores(predictions: Path) -> dict[str, float]:
    """Weighted F1, macro F1 and accuracy of one run's test predictions (in %)."""
    frame = pd.read_csv(predictions, dtype=str, keep_default_na=False)
    truth, guess = frame["label"].to_numpy(), frame["predicted"].to_numpy()
    classes = sorted(set(truth))
    f1s, support = [], []
    for name in classes:
        tp = np.sum((guess == name) & (truth == name))
        predicted, actual = np.sum(guess == name), np.sum(truth == name)
        f1s.append(2 * tp / (predicted + actual) if predicted + actual else 0.0)
        support.append(actual)
    weights = np.array(support) / len(truth)
    return {
        "weighted_f1": 100 * float(np.dot(weights, f1s)),
        "macro_f1": 100 * float(np.mean(f1s)),
        "accuracy": 100 * float(np.mean(truth == guess)),
    }


def collect(sweep_dir: Path) -> dict[str, Any]:
    """Per-seed scores of a sweep, their mean and std, and the data's class balance."""
    runs, balance = {}, None
    for job in read_jobs(sweep_dir):
        if job.status != "done":
            continue
        runs[str(job.overrides["seed"])] = {
            **scores(job.predictions),
            "epochs": job.setting("trainer.max_epochs"),
        }
        balance = json.loads((job.directory / "data.json").read_text())["class_counts"]
    summary = {
        metric: {
            "mean": float(np.mean([r[metric] for r in runs.values()])),
            "std": float(np.std([r[metric] for r in runs.values()], ddof=1))
            if len(runs) > 1
            else None,
        }
        for metric in ("weighted_f1", "macro_f1", "accuracy")
    }
    return {"runs": runs, "summary": summary, "class_counts": balance}


def plot(results: dict[str, dict[str, Any]], path: Path) -> None:
    """Weighted F1 by encoder, per label, with the seeds' std and the published figures."""
    figure, axes = plt.subplots(1, len(results), figsize=(5.5 * len(results), 3.6), squeeze=False)
    for axis, (label, by_encoder) in zip(axes[0], results.items(), strict=True):
        names = list(by_encoder)
        means = [by_encoder[n]["summary"]["weighted_f1"]["mean"] for n in names]
        stds = [by_encoder[n]["summary"]["weighted_f1"]["std"] or 0 for n in names]
        axis.bar(names, means, yerr=stds, capsize=4, color="#4c72b0")
        for (name, value), style in zip(PUBLISHED.get(label, []), ("--", ":"), strict=False):
            axis.axhline(value, color="#c44e52", linestyle=style, label=f"{name}: {value:.1f}")
        if label in PUBLISHED:
            axis.legend(fontsize=7, loc="lower right")
        axis.set_title(f"MELD, {label} (text only)")
        axis.set_ylabel("test weighted F1 (%), mean ± std over seeds")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--meld", type=Path, required=True, help="folder of MELD's three CSVs")
    parser.add_argument("--labels", nargs="+", default=list(LABELS), choices=LABELS)
    parser.add_argument("--encoders", nargs="+", default=list(ENCODERS), choices=list(ENCODERS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3])
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "real_data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "real_data.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs" / "images" / "real_data_f1.png")
    args = parser.parse_args()
    results: dict[str, dict[str, Any]] = {}
    for label in args.labels:
        for encoder in args.encoders:
            sweep_dir = args.work / f"{label}_{encoder}"
            run_sweep(args.meld.resolve(), label, encoder, args.seeds, sweep_dir)
            results.setdefault(label, {})[encoder] = collect(sweep_dir)
            print(label, encoder, json.dumps(results[label][encoder]["summary"]), flush=True)
    plot(results, args.plot)
    args.out.write_text(
        json.dumps(
            {
                "date": date.today().isoformat(),
                "machine": f"{platform.machine()}, {platform.processor() or '?'}",
                "settings": {"common": COMMON, "encoders": ENCODERS, "seeds": args.seeds},
                "published_weighted_f1": PUBLISHED,
                "results": results,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"written: {args.out}, {args.plot}")


if __name__ == "__main__":
    main()
