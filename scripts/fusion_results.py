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
import re
import statistics
from collections import defaultdict
from datetime import date
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from omegaconf import OmegaConf

from rolefusion.commands.info import model_costs
from rolefusion.config import register_configs
from rolefusion.data.roleplay_scenes import ceilings
from sweep_runner import ROOT, run_sweeps

TWO_WAY = ("channel", "sequence", "spatial", "concat", "late", "gated", "tensor",
           "low_rank_tensor", "film", "cross_attention", "image_only", "text_only")  # fmt: skip
THREE_WAY = (*(f for f in TWO_WAY if f not in ("image_only", "text_only")), "audio_only")
TEXT_ENCODERS = ("lstm", "transformer")
SUBSETS = {
    "image_text": ["model/audio_encoder=none"],
    "image_audio": ["model/text_encoder=none", "model/audio_encoder=cnn1d"],
    "text_audio": ["model/image_encoder=none", "model/audio_encoder=cnn1d"],
}
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
    # The data with sound, read through every pair of modalities: what each one adds.
    for name, encoders in SUBSETS.items():
        runs[f"subset_{name}"] = ["model/fusion=concat", "data.source.audio=true", *encoders,
                                  seed_list]  # fmt: skip
    return runs


def run(work: Path, seeds: list[int], parallel: int, extra: list[str], only: list[str]) -> None:
    """Start the sweeps, ``parallel`` processes at a time; ``extra`` overrides apply to every
    job (e.g. ``debug=fast`` to try the script out); ``only`` picks sweeps by name."""
    chosen = {n: o for n, o in sweeps(seeds).items() if not only or n in only}
    run_sweeps(chosen, work, parallel, extra)


UNIMODAL = {"image_only": "image", "text_only": "text", "audio_only": "audio"}


def _job_rows(work: Path) -> list[dict]:
    """One row per finished job, described from its resolved ``config.yaml``."""
    rows = []
    for metrics_file in sorted(work.glob("**/metrics.json")):
        result = json.loads(metrics_file.read_text())
        cfg = OmegaConf.load(metrics_file.parent / "config.yaml")
        overrides = dict(o.split("=", 1) for o in result["overrides"])
        fusion = overrides["model/fusion"]
        modalities = list(cfg.data.modalities)
        reads = [UNIMODAL[fusion]] if fusion in UNIMODAL else modalities
        rows.append(
            {
                "job": metrics_file.parent,
                "data": "with sound" if cfg.data.source.audio else "image and text",
                "reads": "+".join(reads),
                "fusion": fusion,
                "text_encoder": overrides.get("model/text_encoder", "lstm")
                if "text" in modalities
                else "-",
                "f1": result["metrics"]["test/f1"],
                "acc": result["metrics"]["test/acc"],
                "ceiling": _ceiling(reads, bool(cfg.data.source.audio)),
                "measured": date.fromtimestamp(metrics_file.stat().st_mtime).isoformat(),
            }
        )
    return rows


def _ceiling(reads: list[str], audio: bool) -> float:
    """Best accuracy reachable from the modalities read (docs/roleplay_scenes.md)."""
    bounds = ceilings(**DATA, audio=audio)
    if len(reads) == 1:
        return bounds[f"{reads[0]}_only"]
    if len(reads) == 3 or not audio:
        return bounds["fused"]
    return bounds["+".join(reads)]


def _costs(job: Path) -> tuple[int, float]:
    """Trainable parameters and forward FLOPs per sample of a job's model, from its config."""
    costs = model_costs(OmegaConf.load(job / "config.yaml"))
    return sum(c.trainable for c in costs), sum(c.flops_per_sample for c in costs)


def summarise(work: Path) -> list[dict]:
    """Mean and spread over seeds for each (data, modalities read, text encoder, fusion)."""
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for row in _job_rows(work):
        groups[(row["data"], row["reads"], row["text_encoder"], row["fusion"])].append(row)
    summary = []
    for (data, reads, encoder, fusion), rows in groups.items():
        parameters, flops = _costs(rows[0]["job"])
        f1 = [r["f1"] for r in rows]
        summary.append(
            {
                "data": data,
                "reads": reads,
                "text_encoder": encoder,
                "fusion": fusion,
                "seeds": len(rows),
                "f1_mean": statistics.mean(f1),
                "f1_std": statistics.stdev(f1) if len(f1) > 1 else 0.0,
                "acc_mean": statistics.mean(r["acc"] for r in rows),
                "parameters": parameters,
                "flops_per_sample": flops,
                "ceiling": rows[0]["ceiling"],
                "measured": max(r["measured"] for r in rows),
            }
        )
    return summary


def _key(row: dict) -> tuple:
    return row["data"], row["reads"], row["text_encoder"], row["fusion"]


def with_previous(summary: list[dict], previous: Path) -> list[dict]:
    """Add the rows of an earlier report (its JSON) that this one did not re-run.

    Sweeps are hours on a CPU: re-running one column should not mean re-running all. A carried
    row keeps its own ``measured`` date (rows of reports from before that field existed take
    the date in the report's Markdown header).
    """
    if not previous.is_file():
        return sorted_rows(summary)
    header = (
        previous.with_suffix(".md").read_text() if previous.with_suffix(".md").is_file() else ""
    )
    found = re.search(r"Measured (\d{4}-\d{2}-\d{2})", header)
    fresh = {_key(row) for row in summary}
    carried = [
        {**row, "measured": row.get("measured") or (found.group(1) if found else "unknown")}
        for row in json.loads(previous.read_text())
        if _key(row) not in fresh
    ]
    return sorted_rows(summary + carried)


def sorted_rows(summary: list[dict]) -> list[dict]:
    """Image-and-text first, then by text encoder, modalities read and the fusion order."""
    order = {f: i for i, f in enumerate(dict.fromkeys(TWO_WAY + THREE_WAY))}
    summary.sort(
        key=lambda s: (s["data"] != "image and text", s["text_encoder"], -s["reads"].count("+"),
                       order[s["fusion"]])
    )  # fmt: skip
    return summary


def _every_modality_with_sound(row: dict) -> bool:
    """Rows of the three-way comparison: every fusion reading all three, and audio alone."""
    return row["data"] == "with sound" and (
        row["reads"].count("+") == 2 or row["fusion"] in UNIMODAL
    )


TABLE_HEAD = [
    "| fusion | reads | text encoder | seeds | test macro-F1 | test accuracy | parameters "
    "| MFLOPs / sample | accuracy ceiling |",
    "|---|---|---|---:|---:|---:|---:|---:|---:|",
]


def _table(rows: list[dict]) -> list[str]:
    return [
        *TABLE_HEAD,
        *(
            f"| {s['fusion']} | {s['reads']} | {s['text_encoder']} | {s['seeds']} "
            f"| {s['f1_mean']:.3f} ± {s['f1_std']:.3f} | {s['acc_mean']:.3f} "
            f"| {s['parameters']:,} | {s['flops_per_sample'] / 1e6:.1f} | {s['ceiling']:.3f} |"
            for s in rows
        ),
        "",
    ]


def missing(summary: list[dict]) -> list[str]:
    """Planned configurations (``sweeps``) without a single finished job, for the record."""
    found = {(s["data"], s["text_encoder"], s["fusion"]) for s in summary}
    planned = [("image and text", e, f) for e in TEXT_ENCODERS for f in TWO_WAY]
    planned += [("with sound", "lstm", f) for f in THREE_WAY]
    return [f"{f} ({d}, text encoder {e})" for d, e, f in planned if (d, e, f) not in found]


def _dates(summary: list[dict]) -> str:
    return ", ".join(sorted({s["measured"] for s in summary})) or str(date.today())


def markdown(summary: list[dict], command: str) -> str:
    not_run = missing(summary)
    lines = [
        "# Fusion results on the default data",
        "",
        f"Measured {_dates(summary)} by `{command}` (then `report`), on a 2-core CPU. Each job is "
        "the default experiment with one fusion and one text encoder swapped in: synthetic "
        "role-play scenes, 2000/500/500 at 64 px, 8 roles, ambiguity 2, 5% label noise; small "
        "CNN image encoder, `model.dim=128`, AdamW, cosine schedule, 5 epochs; the test split "
        "is scored with the best checkpoint by validation F1. Mean ± standard deviation over "
        "training seeds (1, 2, 3 unless fewer are listed). Parameters are the trainable ones; "
        "FLOPs are forward FLOPs per sample from torch's flop counter (`rolefusion-info`). "
        "The ceiling is the best accuracy any model can reach from the modalities it reads "
        "(docs/roleplay_scenes.md); for a model that reads every modality, macro-F1 has the "
        "same ceiling.",
        "",
        "## Image and text",
        "",
        *_table([s for s in summary if s["data"] == "image and text"]),
        "## Image, text and audio",
        "",
        "The same data set with a voice clip per scene (`model/audio_encoder=cnn1d`): looks, "
        "voices and sounds are each shared by four roles, every pair of them by two, so only "
        "all three name the role.",
        "",
        *_table([s for s in summary if _every_modality_with_sound(s)]),
        "### What each modality adds",
        "",
        "Concat fusion on the data with sound, reading every pair of modalities and all three "
        "(`model/<modality>_encoder=none` leaves one out):",
        "",
        *_table([s for s in summary if s["data"] == "with sound" and s["fusion"] == "concat"]),
        "![Test macro-F1 by fusion](images/fusion_results.png)",
        "",
    ]
    if not_run:
        lines += ["Planned but not yet run: " + "; ".join(not_run) + ".", ""]
    return "\n".join(lines)


def plot(summary: list[dict], path: Path) -> None:
    """Macro-F1 by fusion, one panel per data set, with the ceilings as grey lines."""
    panels = {
        "image and text": [s for s in summary if s["data"] == "image and text"],
        "image, text and audio": [s for s in summary if _every_modality_with_sound(s)],
    }
    figure, axes = plt.subplots(1, 2, figsize=(14, 4.5), sharey=True)
    for axis, (title, rows) in zip(axes, panels.items(), strict=True):
        fusions = list(dict.fromkeys(s["fusion"] for s in rows))
        encoders = list(dict.fromkeys(s["text_encoder"] for s in rows))
        width = 0.8 / max(len(encoders), 1)
        for e, encoder in enumerate(encoders):
            by_fusion = {s["fusion"]: s for s in rows if s["text_encoder"] == encoder}
            shown = [f for f in fusions if f in by_fusion]
            axis.bar([fusions.index(f) + e * width for f in shown],
                     [by_fusion[f]["f1_mean"] for f in shown], width,
                     yerr=[by_fusion[f]["f1_std"] for f in shown], capsize=2,
                     label=f"text encoder: {encoder}")  # fmt: skip
        for ceiling in sorted({s["ceiling"] for s in rows}):
            axis.axhline(ceiling, color="grey", linestyle="--", linewidth=1)
        axis.set_xticks([i + 0.4 - width / 2 for i in range(len(fusions))], fusions, rotation=35)
        axis.set_title(title)
        axis.set_ylim(0, 1.12)
        axis.legend(loc="upper right", fontsize=8, ncol=2)
    axes[0].set_ylabel("test macro-F1 (mean ± std over seeds)")
    figure.suptitle("Fusions on synthetic role-play scenes; grey lines: accuracy ceilings")
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("action", choices=["run", "report"])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=1)
    parser.add_argument("--override", nargs="*", default=[], help="Hydra overrides for every job")
    parser.add_argument("--only", nargs="*", default=[], help="sweeps to run, by name")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "fusion_results")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "fusion_results.md")
    args = parser.parse_args()
    args.work.mkdir(parents=True, exist_ok=True)
    if args.action == "run":
        run(args.work, args.seeds, args.parallel, args.override, args.only)
        return
    register_configs()
    summary = with_previous(summarise(args.work), args.out.with_suffix(".json"))
    (args.out.parent / "images").mkdir(parents=True, exist_ok=True)
    plot(summary, args.out.parent / "images" / "fusion_results.png")
    command = f"python scripts/fusion_results.py run --parallel {args.parallel}"
    args.out.write_text(markdown(summary, command))
    args.out.with_suffix(".json").write_text(json.dumps(summary, indent=2, default=str) + "\n")
    print(args.out.read_text())


if __name__ == "__main__":
    main()
