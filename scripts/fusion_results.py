"""The fusion comparison on the default data: every fusion x text encoder x seed, and with audio.

``run`` trains the sweeps (Hydra multiruns, each job with everything else at its default);
``report`` reads every job's ``metrics.json`` and writes a Markdown table, its numbers as JSON
and a plot: test macro-F1 mean ± std over seeds, parameters and forward FLOPs per sample
(``rolefusion-info``'s counts), beside the ceilings of the synthetic data.

    .venv/bin/python scripts/fusion_results.py run --parallel 2   # ~1 h on 2 CPU cores
    .venv/bin/python scripts/fusion_results.py report             # docs/fusion_results.md

With ``--parallel N`` the sweeps run as N processes of one thread each: small models use
two threads poorly, and two processes of two threads each fight over the cores.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from omegaconf import OmegaConf

from rolefusion.config import register_configs
from rolefusion.data.roleplay_scenes import ceilings
from rolefusion.info import model_costs

ROOT = Path(__file__).resolve().parents[1]
TWO_WAY = ("channel", "sequence", "spatial", "concat", "late", "gated", "tensor",
           "low_rank_tensor", "film", "cross_attention", "image_only", "text_only")  # fmt: skip
THREE_WAY = (*(f for f in TWO_WAY if f not in ("image_only", "text_only")), "audio_only")
TEXT_ENCODERS = ("lstm", "transformer")
DATA = {"num_roles": 8, "ambiguity": 2, "label_noise": 0.05}


def sweeps(seeds: list[int]) -> dict[str, list[str]]:
    """Name -> multirun overrides. Audio runs use the default (lstm) text encoder."""
    seed_list = f"seed={','.join(map(str, seeds))}"
    runs = {
        f"two_way_{encoder}": [f"model/fusion={','.join(TWO_WAY)}",
                               f"model/text_encoder={encoder}", seed_list]
        for encoder in TEXT_ENCODERS
    }  # fmt: skip
    runs["three_way_lstm"] = [
        f"model/fusion={','.join(THREE_WAY)}",
        "model/audio_encoder=cnn1d",
        seed_list,
    ]
    return runs


def run(work: Path, seeds: list[int], parallel: int, extra: list[str]) -> None:
    """Start each sweep as its own process, ``parallel`` at a time, one thread each.

    ``extra`` overrides apply to every job (e.g. ``debug=fast`` to try the script out).
    """
    env = {**os.environ, "OMP_NUM_THREADS": "1"} if parallel > 1 else dict(os.environ)
    pending = list(sweeps(seeds).items())
    running: list[subprocess.Popen] = []
    while pending or running:
        while pending and len(running) < parallel:
            name, overrides = pending.pop(0)
            log = (work / f"{name}.log").open("w")
            command = [sys.executable, "-m", "rolefusion.train", "-m", *overrides, *extra,
                       "logger=none", f"hydra.sweep.dir={work / name}"]  # fmt: skip
            print("started:", " ".join(command[2:]), flush=True)
            running.append(subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log))
        running[0].wait()
        finished = running.pop(0)
        if finished.returncode != 0:
            raise SystemExit(f"a sweep failed (exit {finished.returncode}); see {work}/*.log")


def _job_rows(work: Path) -> list[dict]:
    rows = []
    for metrics_file in sorted(work.glob("*/*/metrics.json")):
        result = json.loads(metrics_file.read_text())
        overrides = dict(o.split("=", 1) for o in result["overrides"])
        rows.append(
            {
                "job": metrics_file.parent,
                "fusion": overrides["model/fusion"],
                "text_encoder": overrides.get("model/text_encoder", "lstm"),
                "audio": "model/audio_encoder" in overrides,
                "f1": result["metrics"]["test/f1"],
                "acc": result["metrics"]["test/acc"],
            }
        )
    return rows


def _costs(job: Path) -> tuple[int, float]:
    """Trainable parameters and forward FLOPs per sample of a job's model, from its config."""
    cfg = OmegaConf.load(job / "config.yaml")
    costs = model_costs(cfg)
    return sum(c.trainable for c in costs), sum(c.flops_per_sample for c in costs)


def summarise(work: Path) -> list[dict]:
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in _job_rows(work):
        groups[(row["audio"], row["text_encoder"], row["fusion"])].append(row)
    summary = []
    for (audio, encoder, fusion), rows in groups.items():
        parameters, flops = _costs(rows[0]["job"])
        f1 = [r["f1"] for r in rows]
        summary.append(
            {
                "modalities": "image+text+audio" if audio else "image+text",
                "text_encoder": encoder,
                "fusion": fusion,
                "seeds": len(rows),
                "f1_mean": statistics.mean(f1),
                "f1_std": statistics.stdev(f1) if len(f1) > 1 else 0.0,
                "acc_mean": statistics.mean(r["acc"] for r in rows),
                "parameters": parameters,
                "flops_per_sample": flops,
                "ceiling": _ceiling(fusion, audio),
            }
        )
    order = {f: i for i, f in enumerate(dict.fromkeys(TWO_WAY + THREE_WAY))}
    summary.sort(key=lambda s: (s["modalities"], s["text_encoder"], order[s["fusion"]]))
    return summary


def _ceiling(fusion: str, audio: bool) -> float:
    bounds = ceilings(**DATA, audio=audio)
    return bounds.get(fusion, bounds["fused"])


def markdown(summary: list[dict], command: str) -> str:
    lines = [
        "# Fusion results on the default data",
        "",
        f"Measured {date.today()} by `{command}` (then `report`), on a 2-core CPU. Each job is "
        "the default experiment with one fusion and one text encoder swapped in: synthetic "
        "role-play scenes, 2000/500/500 at 64 px, 8 roles, ambiguity 2, 5% label noise; small "
        "CNN image encoder, `model.dim=128`, AdamW, cosine schedule, 5 epochs; the test split "
        "is scored with the best checkpoint by validation F1. Mean ± standard deviation over "
        "training seeds 1, 2, 3. Parameters are the trainable ones; FLOPs are forward FLOPs per "
        "sample from torch's flop counter (`rolefusion-info`). The ceiling is the best accuracy "
        "any model can reach with the modalities that fusion reads (docs/roleplay_scenes.md); "
        "for fused models macro-F1 has the same ceiling.",
        "",
    ]
    for modalities in dict.fromkeys(s["modalities"] for s in summary):
        lines += [f"## {modalities}", ""]
        lines += [
            "| fusion | text encoder | test macro-F1 | test accuracy | parameters "
            "| MFLOPs / sample | ceiling |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for s in (s for s in summary if s["modalities"] == modalities):
            lines.append(
                f"| {s['fusion']} | {s['text_encoder']} | {s['f1_mean']:.3f} ± {s['f1_std']:.3f} "
                f"| {s['acc_mean']:.3f} | {s['parameters']:,} | "
                f"{s['flops_per_sample'] / 1e6:.1f} | {s['ceiling']:.3f} |"
            )
        lines.append("")
    lines += ["![Test macro-F1 by fusion](images/fusion_results.png)", ""]
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    groups = list(dict.fromkeys((s["modalities"], s["text_encoder"]) for s in summary))
    fusions = list(dict.fromkeys(s["fusion"] for s in summary))
    figure, axis = plt.subplots(figsize=(12, 4.5))
    width = 0.8 / len(groups)
    for g, (modalities, encoder) in enumerate(groups):
        rows = {s["fusion"]: s for s in summary if (s["modalities"], s["text_encoder"]) == (
            modalities, encoder)}  # fmt: skip
        xs = [i + g * width for i, f in enumerate(fusions) if f in rows]
        axis.bar(xs, [rows[f]["f1_mean"] for f in fusions if f in rows], width,
                 yerr=[rows[f]["f1_std"] for f in fusions if f in rows], capsize=2,
                 label=f"{modalities}, {encoder}")  # fmt: skip
    for modalities, style in (("image+text", "--"), ("image+text+audio", ":")):
        fused = _ceiling("concat", modalities.endswith("audio"))
        axis.axhline(fused, color="grey", linestyle=style, linewidth=1)
    axis.set_xticks([i + 0.4 - width / 2 for i in range(len(fusions))], fusions, rotation=30)
    axis.set_ylabel("test macro-F1")
    axis.set_ylim(0, 1)
    axis.set_title("Fusions on synthetic role-play scenes (mean ± std over 3 seeds; grey: ceiling)")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides for every job")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "fusion_results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "fusion_results.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.action == "run":
        run(args.work, args.seeds, args.parallel, args.override)
        return
    register_configs()
    summary = summarise(args.work)
    (args.out.parent / "images").mkdir(parents=True, exist_ok=True)
    plot(summary, args.out.parent / "images" / "fusion_results.png")
    command = f"python scripts/fusion_results.py run --parallel {args.parallel}"
    args.out.write_text(markdown(summary, command))
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
