"""Do blur and token shuffle hurt where the data says they should?

On the default (``additive``) scenes the role can be read from colours and from which words are
used, so neither blur nor shuffle changes much (docs/robustness.md). Two interaction families
put the deciding detail where these corruptions reach it (docs/roleplay_scenes.md): on
``synergy`` the role's last bit depends on the line's word order, so a shuffled line should cost
a model that has learnt it; on ``grounding`` the reference is the cut of a costume, a few pixels
of outline, so a blurred picture should. For each family this trains the fusion that learns it
(``experiment=fusion_benchmark``'s data, each family's budget from scripts/fusion_benchmark.py),
runs ``rolefusion-eval corruptions=[image_blur,text_shuffle]`` on each job, and writes the
medians over seeds (docs/interaction_robustness.md, docs/images/interaction_robustness.png).

    .venv/bin/python scripts/interaction_robustness.py      # ~25 min on 2 CPU cores
    .venv/bin/python scripts/interaction_robustness.py --train synergy   # retrain one family
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
from collections.abc import Callable, Hashable
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from fusion_benchmark import BUDGETS, MAIN_SIZE, schedule
from rolefusion.commands.report import read_jobs
from rolefusion.data.roleplay_scenes import RolePlayScenes
from rolefusion.data.roleplay_scenes.interactions import Cell, bayes_accuracy

ROOT = Path(__file__).resolve().parents[1]
MODELS = {"additive": "channel", "synergy": "concat", "grounding": "cross_attention"}
"""Per family, a fusion that reaches its full ceiling (the slow tests train them)."""
CORRUPTIONS = ("image_blur", "text_shuffle")
LOST_DETAIL = {
    ("synergy", "text_shuffle"): ("the line's order", lambda c: (c.image, c.text[0])),
    ("grounding", "image_blur"): ("the costumes' cut", lambda c: (c.image[:2], c.text)),
}
"""Where a corruption takes the deciding detail away: what it is, and what a model that reads
everything else still sees of a cell (synergy: the voice, not the order; grounding: both
colours and the named costume, not who wears it)."""


def without_detail(family: str, cue: Callable[[Cell], Hashable]) -> float:
    """The best accuracy of a model that reads ``cue`` of each of ``family``'s cells."""
    scenes = RolePlayScenes("unused", interaction=family)
    return bayes_accuracy(scenes.family.cells(), cue, scenes.num_roles, scenes.label_noise)


def train(out: Path, family: str, seeds: list[int]) -> None:
    """Train ``family``'s model over ``seeds`` into ``out / family``, replacing earlier runs."""
    epochs, every = schedule(BUDGETS[family], MAIN_SIZE)
    shutil.rmtree(out / family, ignore_errors=True)
    subprocess.run(
        [sys.executable, "-m", "rolefusion.train", "-m", "experiment=fusion_benchmark",
         f"data.source.interaction={family}", f"model/fusion={MODELS[family]}",
         f"seed={','.join(map(str, seeds))}", f"trainer.max_epochs={epochs}",
         f"+trainer.check_val_every_n_epoch={every}", f"hydra.sweep.dir={out / family}",
         "task_name=interaction_robustness"],
        check=True, cwd=ROOT,
    )  # fmt: skip


def evaluate(out: Path, family: str) -> list[dict]:
    """``robustness.json`` of every job of ``family``."""
    results = []
    for job in read_jobs(out / family):
        report = job.directory / "eval" / "test" / "robustness.json"
        subprocess.run(
            [sys.executable, "-m", "rolefusion.evaluate",
             f"ckpt_path={job.directory / 'checkpoints' / 'last.ckpt'}",
             f"corruptions=[{','.join(CORRUPTIONS)}]"],
            check=True, cwd=ROOT, capture_output=True,
        )  # fmt: skip
        results.append(json.loads(report.read_text()))
    return results


def curve(runs: list[dict], corruption: str) -> tuple[list[float], list[list[float]]]:
    """Strengths (0 = clean) and, at each, the F1 of every run in ``runs``."""
    levels = runs[0]["corruptions"][corruption]
    strengths = [0.0, *(level["strength"] for level in levels)]
    scores = [[r["clean"]["f1"] for r in runs]] + [
        [r["corruptions"][corruption][i]["f1"] for r in runs] for i in range(len(levels))
    ]
    return strengths, scores


def cell(scores: list[float], clean: float | None = None) -> str:
    """Median (min-max over seeds), and the median's change from ``clean`` when given."""
    median = statistics.median(scores)
    change = "" if clean is None else f", {median - clean:+.3f}"
    return f"{median:.3f} ({min(scores):.3f}-{max(scores):.3f}{change})"


def write(results: dict[str, list[dict]], seeds: list[int], out: Path) -> None:
    width = max(len(curve(runs, c)[0]) for runs in results.values() for c in CORRUPTIONS) - 1
    lines = [
        "# Blur and token shuffle on the interaction families",
        "",
        f"Measured {date.today()} with `python scripts/interaction_robustness.py` (seeds "
        f"{', '.join(map(str, seeds))}; `experiment=fusion_benchmark`'s data: 32 px, 2000 "
        "training scenes, 500 test scenes; each family's training budget from "
        "scripts/fusion_benchmark.py). Test macro-F1: median over seeds (min-max, and the "
        "median's change from clean), clean and at each strength (blur: Gaussian sigma in "
        "pixels; shuffle: share of each line's tokens that trade places). The families: "
        "[roleplay_scenes.md](roleplay_scenes.md#interaction-families). A seed whose clean F1 "
        "sits near a unimodal ceiling has not learnt its family's interaction, and cannot lose it.",
        "",
        "| family | fusion | corruption | clean | "
        + " | ".join(f"strength {i + 1}" for i in range(width)) + " |",
        "|---|---|---|---:|" + "---:|" * width,
    ]  # fmt: skip
    for family, runs in results.items():
        for corruption in CORRUPTIONS:
            strengths, scores = curve(runs, corruption)
            clean = statistics.median(scores[0])
            cells = [
                f"{s:g}: {cell(f, clean)}" for s, f in zip(strengths[1:], scores[1:], strict=True)
            ]
            cells += [""] * (width - len(cells))
            lines.append(f"| {family} | {MODELS[family]} | {corruption} | {cell(scores[0])} | "
                         + " | ".join(cells) + " |")  # fmt: skip
    lines += [
        "",
        *reading(results),
        "",
        "![F1 against strength](images/interaction_robustness.png)",
        "",
    ]
    docs = ROOT / "docs"
    (docs / "interaction_robustness.md").write_text("\n".join(lines))
    (docs / "interaction_robustness.json").write_text(
        json.dumps({"seeds": seeds, "models": MODELS, "runs": results}, indent=1) + "\n"
    )
    plot(results, docs / "images" / "interaction_robustness.png")


def reading(results: dict[str, list[dict]]) -> list[str]:
    """Each corruption's cost at its strongest, and where it takes the deciding detail away,
    the ceiling left without that detail beside the score."""
    lines = []
    for corruption in CORRUPTIONS:
        costs = []
        for family, runs in results.items():
            strengths, scores = curve(runs, corruption)
            clean, worst = statistics.median(scores[0]), statistics.median(scores[-1])
            cost = f"{family} {worst - clean:+.3f} (to {worst:.3f})"
            if (family, corruption) in LOST_DETAIL:
                detail, cue = LOST_DETAIL[family, corruption]
                cost += f"; without {detail} the ceiling is {without_detail(family, cue):.3f}"
            costs.append(cost)
        lines.append(f"- {corruption} at strength {strengths[-1]:g}: " + "; ".join(costs) + ".")
    return lines


def plot(results: dict[str, list[dict]], path: Path) -> None:
    figure, axes = plt.subplots(1, len(CORRUPTIONS), figsize=(4.2 * len(CORRUPTIONS), 3.2))
    for axis, corruption in zip(axes, CORRUPTIONS, strict=True):
        for family, runs in results.items():
            strengths, scores = curve(runs, corruption)
            medians = [statistics.median(f) for f in scores]
            low, high = zip(*((min(f), max(f)) for f in scores), strict=True)
            line = axis.plot(strengths, medians, marker="o", label=f"{family} ({MODELS[family]})")
            axis.fill_between(strengths, low, high, color=line[0].get_color(), alpha=0.15)
            if (family, corruption) in LOST_DETAIL:
                detail, cue = LOST_DETAIL[family, corruption]
                axis.axhline(without_detail(family, cue), color=line[0].get_color(), ls=":",
                             label=f"{family}: ceiling without {detail}")  # fmt: skip
        seeds = len(next(iter(results.values())))
        axis.set_title(f"{corruption}: median and range of {seeds} seeds", fontsize=9)
        axis.set_xlabel("strength (0 = clean)")
        axis.set_ylim(0, 1.02)
    axes[0].set_ylabel("test macro-F1")
    for axis in axes:
        axis.legend(fontsize=7, loc="lower left")
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--train", nargs="*", default=list(MODELS), choices=list(MODELS),
                        help="families to train, replacing their earlier runs; every family "
                        "trained under --out is evaluated and reported")  # fmt: skip
    parser.add_argument("--out", type=Path, default=ROOT / "outputs" / "interaction_robustness")
    args = parser.parse_args()
    for family in args.train:
        train(args.out, family, args.seeds)
    results = {f: evaluate(args.out, f) for f in MODELS if (args.out / f).is_dir()}
    write(results, args.seeds, args.out)
    print((ROOT / "docs" / "interaction_robustness.md").read_text())


if __name__ == "__main__":
    main()
