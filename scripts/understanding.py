"""Measure what docs/understanding.md says: modality attribution and calibration on data whose
answer is known.

One model (tensor fusion, trained with modality dropout so that an absent modality is something it
has seen) per variant and seed, on the synthetic scenes' interaction families and on a text-only
variant (the redundant scenes with every picture replaced by one blank image, so that only the
line tells the role). Each run's best checkpoint is then evaluated on its test split with
``rolefusion-eval attribution=true calibrate=true``. The results section of the page (between its
``results`` markers), its JSON and its pictures are rewritten from those evaluations.

    .venv/bin/python scripts/understanding.py run       # trains, evaluates, writes the page
    .venv/bin/python scripts/understanding.py report    # rewrites the page from finished runs

``run`` skips runs and evaluations that are already done, so an interrupted one continues.
Measured duration with the defaults (3 seeds, ``--parallel 2``) on 2 cores: see the page.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from PIL import Image

from rolefusion.data.roleplay_scenes import RolePlayScenes

ROOT = Path(__file__).resolve().parents[1]
FAMILIES = ("redundant", "additive", "synergy")
TEXT_ONLY = "text_only"
VARIANTS = (*FAMILIES, TEXT_ONLY)
EPOCHS = {"redundant": 5, "additive": 5, "synergy": 20, TEXT_ONLY: 5}
"""5 epochs of 2000 reach the ceiling on the redundant and additive scenes; synergy needs 20 to
leave the plateau of its per-modality information (docs/fusion_benchmark.md)."""
SCENES = {"num_train": 2000, "num_val": 300, "num_test": 500, "image_size": 32}
MODEL = ["model/fusion=tensor", "model.modality_dropout=0.3", "logger=none"]
EXPECTED = {
    "redundant": "either modality names the role: the model may rest on both or on either",
    "additive": "each modality leaves two candidates: both are needed, both get a clear share",
    "synergy": "the role's last bit is an XOR of the two: neither decides it alone",
    TEXT_ONLY: "the picture is the same blank for every example: the text gets (nearly) all",
}
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def blank_image_scenes(scenes: dict[str, Path], out: Path, image_size: int) -> Path:
    """The scenes' manifests under ``out`` with every image one blank grey picture: data whose
    pictures carry nothing, so a text-only-informative variant of the same lines and labels."""
    out.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (image_size, image_size), (128, 128, 128)).save(out / "blank.png")
    for split, manifest in scenes.items():
        rows = [json.loads(line) for line in manifest.read_text().splitlines() if line.strip()]
        lines = [json.dumps({**row, "image": "blank.png"}) for row in rows]
        (out / f"{split}.jsonl").write_text("\n".join(lines) + "\n")
    return out


def data_overrides(variant: str, work: Path, scenes: dict[str, int]) -> list[str]:
    """How one variant's data is chosen on the command line; the text-only variant keeps the
    scenes' fixed normalization, which a blank picture could not be measured for."""
    if variant != TEXT_ONLY:
        sizes = [f"data.source.{key}={value}" for key, value in scenes.items()]
        return [*sizes, f"data.source.interaction={variant}"]
    # Where the redundant runs cache the same scenes (conf/data/roleplay_scenes.yaml: root).
    source = RolePlayScenes(work / "data" / "roleplay_scenes", interaction="redundant", **scenes)
    source = source.prepare()
    root = blank_image_scenes(source, work / "text_only_data", scenes["image_size"])
    return ["data=manifest", f"data.root={root}", f"data.image_size={scenes['image_size']}",
            "data.mean=[0.5,0.5,0.5]", "data.std=[0.5,0.5,0.5]"]  # fmt: skip


def run_one(job: Path, train: list[str], extra: list[str], log: Path) -> float:
    """Train (unless finished) and evaluate (unless evaluated) one run; seconds it took."""
    started = time.monotonic()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    with log.open("a") as handle:
        if not (job / "metrics.json").is_file():
            command = [sys.executable, "-m", "rolefusion.train", *train, *extra,
                       f"hydra.run.dir={job}"]  # fmt: skip
            subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=handle, check=True)
        if not (job / "eval" / "metrics.json").is_file():
            checkpoint = json.loads((job / "metrics.json").read_text())["best_checkpoint"]
            command = [sys.executable, "-m", "rolefusion.evaluate", f"ckpt_path={checkpoint}",
                       "attribution=true", "calibrate=true", f"out_dir={job / 'eval'}"]  # fmt: skip
            subprocess.run(command, cwd=ROOT, env=env, stdout=handle, stderr=handle, check=True)
    return time.monotonic() - started


def run(args: argparse.Namespace) -> None:
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    scenes = {k: args.scene.get(k, v) for k, v in SCENES.items()}
    jobs = []
    for variant in args.variants:
        epochs = max(1, round(EPOCHS[variant] * args.epochs_scale))
        data = data_overrides(variant, work, scenes)
        for seed in args.seeds:
            train = [*MODEL, *data, f"seed={seed}", f"trainer.max_epochs={epochs}",
                     f"paths.data_dir={work / 'data'}"]  # fmt: skip
            jobs.append((work / variant / f"seed-{seed}", train))
    started = time.monotonic()
    with ThreadPoolExecutor(args.parallel) as pool:
        futures = [
            pool.submit(run_one, job, train, args.override, work / f"{job.parent.name}.log")
            for job, train in jobs
        ]
        busy = sum(future.result() for future in futures)
    timing = {"wall_seconds": time.monotonic() - started, "job_seconds": busy,
              "parallel": args.parallel, "command": " ".join(sys.argv[1:])}  # fmt: skip
    (work / "timing.json").write_text(json.dumps(timing, indent=2))
    report(args)


def read_results(work: Path) -> dict[str, list[dict]]:
    """Each variant's evaluations, by seed."""
    results: dict[str, list[dict]] = {}
    for variant in VARIANTS:
        for path in sorted((work / variant).glob("seed-*/eval/metrics.json")):
            results.setdefault(variant, []).append(json.loads(path.read_text()))
    if not results:
        raise SystemExit(f"{work}: no evaluated runs; run `scripts/understanding.py run` first")
    return results


def spread(values: list[float]) -> str:
    """``mean ± sd (n)``; one value: itself and ``n=1``."""
    if len(values) == 1:
        return f"{values[0]:.3f} (n=1)"
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values):.3f}"


def summary(results: dict[str, list[dict]]) -> dict[str, dict]:
    """Per variant and over seeds: test F1, each modality's share, and calibration."""
    table = {}
    for variant, runs in results.items():
        modalities = runs[0]["attribution"]["modalities"]
        split = runs[0]["split"]
        table[variant] = {
            "seeds": len(runs),
            "f1": [r["metrics"][f"{split}/f1"] for r in runs],
            "share": {
                m: [r["attribution"]["overall"]["share"][m] for r in runs] for m in modalities
            },
            "temperature": [r["calibration"]["temperature"] for r in runs],
            **{
                f"{score}_{when}": [
                    r["calibration"]["splits"][split][f"{score}_{when}"] for r in runs
                ]
                for score in ("ece", "nll")
                for when in ("before", "after")
            },
            "brier": [r["metrics"][f"{split}/brier"] for r in runs],
            "in_distribution": all(r["attribution"]["in_distribution"] for r in runs),
        }
    return table


def results_markdown(table: dict[str, dict], timing: dict | None, images: str) -> str:
    lines = [
        "| variant | what should happen | test F1 | image share | text share | test ECE "
        "before → after temperature | test NLL before → after | temperature | Brier |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for variant, row in table.items():
        lines.append(
            f"| {variant} | {EXPECTED[variant]} | {spread(row['f1'])} "
            f"| {spread(row['share']['image'])} | {spread(row['share']['text'])} "
            f"| {spread(row['ece_before'])} → {spread(row['ece_after'])} "
            f"| {spread(row['nll_before'])} → {spread(row['nll_after'])} "
            f"| {spread(row['temperature'])} | {spread(row['brier'])} |"
        )
    seeds = sorted({row["seeds"] for row in table.values()})
    lines += [
        "",
        f"Mean ± standard deviation over {', '.join(map(str, seeds))} seeds (training seeds; "
        "one data set per variant). Shares are of mean |Shapley value| over the test split; "
        "the temperature is fitted on the validation split and scored on the test split.",
    ]
    if timing:
        lines.append(
            f"Measured with `scripts/understanding.py {timing['command']}`: "
            f"{timing['wall_seconds'] / 60:.0f} min on the clock, "
            f"{timing['parallel']} runs at a time."
        )
    lines.append("")
    for variant in table:
        lines += [
            f"### {variant}",
            "",
            f"![{variant}: shares per predicted class]({images}/{variant}_attribution.png)",
            f"![{variant}: example cards]({images}/{variant}_examples.png)",
            f"![{variant}: reliability]({images}/{variant}_reliability.png)",
            "",
        ]
    return "\n".join(lines)


def report(args: argparse.Namespace) -> None:
    work = args.work.resolve()
    results = read_results(work)
    table = summary(results)
    timing_file = work / "timing.json"
    timing = json.loads(timing_file.read_text()) if timing_file.is_file() else None
    out = args.out.resolve()
    images = out.parent / "images" / "understanding"
    images.mkdir(parents=True, exist_ok=True)
    for variant in table:
        first = sorted((work / variant).glob("seed-*/eval"))[0]
        for source, name in (("attribution.png", "attribution"),
                             ("attribution_examples.png", "examples"),
                             ("reliability.png", "reliability")):  # fmt: skip
            shutil.copyfile(first / source, images / f"{variant}_{name}.png")
    out.with_suffix(".json").write_text(json.dumps({"summary": table, "timing": timing}, indent=2))
    block = results_markdown(table, timing, os.path.relpath(images, out.parent))
    page = out.read_text() if out.is_file() else f"# Understanding\n\n{BEGIN}\n{END}\n"
    if BEGIN not in page or END not in page:
        raise SystemExit(f"{out}: no {BEGIN} ... {END} markers to write the results between")
    head, rest = page.split(BEGIN, 1)
    page = f"{head}{BEGIN}\n{block}\n{END}{rest.split(END, 1)[1]}"
    out.write_text(page)
    print(block)


def scene_setting(text: str) -> tuple[str, int]:
    key, _, value = text.partition("=")
    if key not in SCENES or not value.isdigit():
        raise argparse.ArgumentTypeError(f"expected one of {list(SCENES)}=<int>, got {text!r}")
    return key, int(value)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("run", "report"))
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "understanding")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "understanding.md")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    parser.add_argument("--parallel", type=int, default=2)
    parser.add_argument("--epochs-scale", type=float, default=1.0,
                        help="multiply every variant's epochs (a quick look: 0.2)")  # fmt: skip
    parser.add_argument("--scene", type=scene_setting, nargs="*", default=[],
                        help="data set sizes, e.g. num_train=400 image_size=16")  # fmt: skip
    parser.add_argument("--override", nargs="*", default=[],
                        help="Hydra overrides for every training run")  # fmt: skip
    args = parser.parse_args()
    args.scene = dict(args.scene)
    (run if args.command == "run" else report)(args)


if __name__ == "__main__":
    main()
