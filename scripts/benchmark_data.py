"""Data loading against the model on the default experiment: is training ever waiting for data?

Three measurements, all in one process on the default experiment (``rolefusion-train`` with no
overrides: synthetic role-play scenes, 2000 training examples at 64 px, batch 64, channel fusion
of a small CNN and an LSTM, AdamW), interleaved (every configuration once per repeat, in the
same order, ``--repeats`` times) and reported as medians:

1. loader throughput, examples/s over one pass of the training DataLoader, with the decoded-image
   cache (the default, filled at set-up) and without it (``data.image_cache.max_bytes=0``: every
   image decoded from its PNG each time), at 0 and 2 workers; a fresh DataLoader per pass, its
   first batch (worker start-up included) fetched before the clock starts;
2. the model's consumption rate, examples/s of training steps (forward, loss, backward,
   optimizer step) on batches collated into memory beforehand, no loading at all;
3. the share of training step time spent waiting for data in a real ``Trainer.fit`` (one epoch,
   no validation, logger and checkpoints off): time from ``on_train_batch_end`` to the next
   ``on_train_batch_start`` over the wall time of the steps, at 0 and 2 workers, cache on.

Writes ``docs/data_loading.json`` (every repeat) and ``docs/data_loading.md`` and prints a table.

    .venv/bin/python scripts/benchmark_data.py --repeats 5
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from rolefusion.build import build_model, prepared_datamodule
from rolefusion.config import check_targets, register_configs
from rolefusion.data.batch import Batch
from rolefusion.data.datamodule import DataSpec, RoleFusionDataModule

ROOT = Path(__file__).resolve().parents[1]
TARGET_WAIT_SHARE = 0.10
"""The issue's target: under 10% of training step time spent waiting for data."""

LOADERS: dict[str, tuple[str, list[str]]] = {
    "loader_cache_w0": ("cache, 0 workers (default)", ["data.num_workers=0"]),
    "loader_cache_w2": ("cache, 2 workers", ["data.num_workers=2"]),
    "loader_nocache_w0": (
        "no cache, 0 workers",
        ["data.image_cache.max_bytes=0", "data.num_workers=0"],
    ),
    "loader_nocache_w2": (
        "no cache, 2 workers",
        ["data.image_cache.max_bytes=0", "data.num_workers=2"],
    ),
}
MODEL = "model"
FITS: dict[str, tuple[str, str]] = {
    "fit_cache_w0": ("fit, cache, 0 workers (default)", "loader_cache_w0"),
    "fit_cache_w2": ("fit, cache, 2 workers", "loader_cache_w2"),
}
"""Fit configuration -> (label, the loader configuration whose data module it trains on)."""


def compose_default(data_dir: Path, work: Path, *overrides: str) -> DictConfig:
    """``train.yaml`` as ``rolefusion-train`` composes it, with the paths pointed at ``work``."""
    register_configs()
    paths = [
        f"paths.root_dir={ROOT}",
        f"paths.data_dir={data_dir}",
        f"paths.log_dir={work}",
        f"paths.output_dir={work}/run",
    ]
    with initialize_config_dir(config_dir=str(ROOT / "conf"), version_base="1.3"):
        cfg = compose("train", overrides=[*paths, *overrides])
    check_targets(cfg)
    return cfg


def _release() -> None:
    """Collect the DataLoader just dropped, so its workers (if any) exit before the next pass."""
    gc.collect()


def loader_pass(datamodule: RoleFusionDataModule) -> dict[str, float]:
    """One pass over a fresh training DataLoader. The first batch (with workers: their start-up)
    is fetched before the clock starts; the rest of the pass is timed."""
    cache = datamodule.cleaner.cache
    hits, misses = cache.hits, cache.misses
    loader = datamodule.train_dataloader()
    start = time.perf_counter()
    iterator = iter(loader)
    first = len(next(iterator))
    first_s = time.perf_counter() - start
    examples, clock = 0, time.perf_counter()
    for batch in iterator:
        examples += len(batch)
    end = time.perf_counter()
    del iterator, loader
    _release()
    return {
        "examples_per_s": examples / (end - clock),
        "first_batch_s": first_s,
        "full_pass_examples_per_s": (first + examples) / (end - start),
        "examples_timed": examples,
        # Only the main process's cache is visible: with workers these stay at 0.
        "cache_hits_in_main": cache.hits - hits,
        "cache_misses_in_main": cache.misses - misses,
    }


def model_pass(cfg: DictConfig, spec: DataSpec, batches: list[Batch]) -> dict[str, float]:
    """Training steps of a freshly built default model on batches already in memory: one
    untimed warm-up step, then the rest of the epoch's batches timed."""
    model = build_model(cfg, spec)
    model.train()
    optimizer = model.optimizer_factory(params=model.parameters())

    def step(batch: Batch) -> None:
        loss = model.loss(model(batch), batch.label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    step(batches[0])
    examples, clock = 0, time.perf_counter()
    for batch in batches[1:]:
        step(batch)
        examples += len(batch)
    elapsed = time.perf_counter() - clock
    return {"examples_per_s": examples / elapsed, "examples_timed": examples}


class StepTimer(L.Callback):
    """Per training batch: the step (``on_train_batch_start`` -> ``on_train_batch_end``) and the
    wait before it (previous ``on_train_batch_end`` -> this ``on_train_batch_start``: fetching
    the next batch plus Lightning's bookkeeping between steps). The first batch's wait is timed
    from ``on_train_epoch_start`` and kept apart: with workers it includes their start-up."""

    def __init__(self) -> None:
        self.steps: list[float] = []
        self.waits: list[float] = []
        self.examples: list[int] = []
        self.first_wait = 0.0
        self._mark = 0.0

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._mark = time.perf_counter()

    def on_train_batch_start(
        self, trainer: L.Trainer, pl_module: L.LightningModule, batch: Any, batch_idx: int
    ) -> None:
        now = time.perf_counter()
        if batch_idx == 0:
            self.first_wait = now - self._mark
        else:
            self.waits.append(now - self._mark)
        self.examples.append(len(batch))
        self._mark = now

    def on_train_batch_end(
        self,
        trainer: L.Trainer,
        pl_module: L.LightningModule,
        outputs: Any,
        batch: Any,
        batch_idx: int,
    ) -> None:
        now = time.perf_counter()
        self.steps.append(now - self._mark)
        self._mark = now


def fit_pass(
    cfg: DictConfig, datamodule: RoleFusionDataModule, limit_batches: int | None
) -> dict[str, float]:
    """``Trainer.fit`` of a freshly built default model for one epoch, no validation."""
    model = build_model(cfg, datamodule.spec)
    timer = StepTimer()
    extra = {} if limit_batches is None else {"limit_train_batches": limit_batches}
    trainer: L.Trainer = instantiate(
        cfg.trainer,
        callbacks=[timer],
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        limit_val_batches=0,
        num_sanity_val_steps=0,
        **extra,
    )
    trainer.fit(model, datamodule=datamodule)
    del trainer
    _release()
    # Steady state: from the end of the first step to the end of the last.
    waits, steps = sum(timer.waits), sum(timer.steps[1:])
    examples = sum(timer.examples[1:])
    return {
        "wait_share": waits / (waits + steps),
        "wait_share_with_start": (timer.first_wait + waits)
        / (timer.first_wait + waits + sum(timer.steps)),
        "examples_per_s": examples / (waits + steps),
        "wait_ms_per_step": 1000 * waits / len(timer.waits),
        "step_ms": 1000 * steps / len(timer.waits),
        "first_wait_s": timer.first_wait,
        "steps": len(timer.steps),
    }


def _quiet() -> None:
    """Keep the console to the benchmark: no per-fit banners or advice about workers."""
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "rolefusion"):
        logging.getLogger(name).setLevel(logging.WARNING)
    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*limit_val_batches=0.*")
    warnings.filterwarnings("ignore", message=".*val_dataloader.*")


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _median(runs: list[dict[str, float]], key: str) -> float:
    return statistics.median(run[key] for run in runs)


def summarise(raw: dict[str, list[dict[str, float]]], labels: dict[str, str]) -> dict[str, dict]:
    """Medians per configuration; loaders and fits also get their rate over the model's, taken
    repeat by repeat (side by side, so the machine's load at that moment cancels) then medianed."""
    model = raw[MODEL]
    summary = {}
    for name, runs in raw.items():
        keys = [k for k, v in runs[0].items() if isinstance(v, float)]
        entry = {"label": labels[name], **{k: _median(runs, k) for k in keys}}
        entry["examples_per_s_min"] = min(r["examples_per_s"] for r in runs)
        entry["examples_per_s_max"] = max(r["examples_per_s"] for r in runs)
        if name != MODEL:
            entry["ratio_to_model"] = statistics.median(
                r["examples_per_s"] / m["examples_per_s"] for r, m in zip(runs, model, strict=True)
            )
        summary[name] = entry
    return summary


def print_table(summary: dict[str, dict]) -> None:
    table = Table(title="Data loading vs the model (medians)")
    for column in ("measurement", "examples/s", "min-max", "vs model", "1st batch s", "wait"):
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for entry in summary.values():
        first = entry.get("first_batch_s", entry.get("first_wait_s"))
        table.add_row(
            entry["label"],
            f"{entry['examples_per_s']:,.0f}",
            f"{entry['examples_per_s_min']:,.0f}-{entry['examples_per_s_max']:,.0f}",
            f"{entry['ratio_to_model']:.2f}x" if "ratio_to_model" in entry else "",
            f"{first:.2f}" if first is not None else "",
            f"{entry['wait_share']:.1%}" if "wait_share" in entry else "",
        )
    Console().print(table)


def _rows(summary: dict[str, dict]) -> list[str]:
    rows = [
        "| measurement | examples/s (median) | min-max over repeats | vs model | "
        "first batch (s) | data wait share |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for entry in summary.values():
        first = entry.get("first_batch_s", entry.get("first_wait_s"))
        rows.append(
            f"| {entry['label']} | {entry['examples_per_s']:,.0f} | "
            f"{entry['examples_per_s_min']:,.0f}-{entry['examples_per_s_max']:,.0f} | "
            + (f"{entry['ratio_to_model']:.2f}x" if "ratio_to_model" in entry else "-")
            + " | "
            + (f"{first:.2f}" if first is not None else "-")
            + " | "
            + (f"{entry['wait_share']:.1%}" if "wait_share" in entry else "-")
            + " |"
        )
    return rows


def _reading(summary: dict[str, dict], figures: dict[str, Any]) -> list[str]:
    """What the numbers say, worded from the numbers themselves."""
    s = summary
    cached, uncached = s["loader_cache_w0"], s["loader_nocache_w0"]
    hit_us = 1e6 / cached["examples_per_s"]
    decode_us = 1e6 / uncached["examples_per_s"]
    lines = [
        f"- **The cache.** In the main process an example costs {hit_us:,.0f} µs with the cache "
        f"and {decode_us:,.0f} µs when its PNG is decoded again, so the cache makes the loader "
        f"{cached['examples_per_s'] / uncached['examples_per_s']:.1f}x faster at 0 workers "
        f"({s['loader_cache_w2']['examples_per_s'] / s['loader_nocache_w2']['examples_per_s']:.1f}"
        "x at 2). A cache hit still reads and hashes the file (the key is the content), so it is "
        "not free; decoding is what it saves, and the larger and more compressed the images of a "
        "real data set, the more decoding dominates and the more the cache matters.",
    ]
    for cache, name in (("cache", "with the cache"), ("nocache", "without it")):
        w0, w2 = s[f"loader_{cache}_w0"], s[f"loader_{cache}_w2"]
        ratio = w2["examples_per_s"] / w0["examples_per_s"]
        verdict = "faster" if ratio > 1.05 else "slower" if ratio < 0.95 else "no faster"
        lines.append(
            f"- **Workers, {name}.** 2 workers are {verdict} than loading in the main process "
            f"({ratio:.2f}x once started), and starting them costs "
            f"{w2['first_batch_s']:.2f} s before the first batch "
            f"(vs {w0['first_batch_s']:.2f} s)."
        )
    lines[-2] += (
        " With every image already decoded, what is left per example is small, and on "
        f"{figures['machine']['cpu_count']} cores a worker can only run where the main process "
        "is not; each batch is also pickled through shared memory on its way back."
        if s["loader_cache_w2"]["examples_per_s"] < 1.05 * cached["examples_per_s"]
        else ""
    )
    slowest = min((s[n] for n in LOADERS), key=lambda e: e["ratio_to_model"])
    if slowest["ratio_to_model"] > 1:
        lines.append(
            f"- **Loader vs model.** Every loader configuration outruns the model: the slowest "
            f"({slowest['label']}) still serves {slowest['ratio_to_model']:.1f}x the "
            f"{s[MODEL]['examples_per_s']:,.0f} examples/s that training steps consume. Loading "
            "alone is not the bottleneck of the default experiment."
        )
    else:
        behind = [s[n]["label"] for n in LOADERS if s[n]["ratio_to_model"] <= 1]
        lines.append(
            f"- **Loader vs model.** {', '.join(behind)} cannot keep up with the model "
            f"({s[MODEL]['examples_per_s']:,.0f} examples/s): training with "
            f"{'it' if len(behind) == 1 else 'them'} waits for data."
        )
    for name in FITS:
        fit = s[name]
        meets = "meets" if fit["wait_share"] < TARGET_WAIT_SHARE else "misses"
        lines.append(
            f"- **{fit['label']}.** {fit['wait_share']:.1%} of step time between steps "
            f"({fit['wait_ms_per_step']:.1f} ms per step against {fit['step_ms']:.1f} ms of step): "
            f"it {meets} the {TARGET_WAIT_SHARE:.0%} target. Counting the first batch "
            f"({fit['first_wait_s']:.2f} s, worker start-up included) it is "
            f"{fit['wait_share_with_start']:.1%} of the epoch."
        )
    w0, w2 = s["fit_cache_w0"], s["fit_cache_w2"]
    lines.append(
        f"- **Workers in training.** Steps run at {w2['step_ms']:.1f} ms with 2 workers against "
        f"{w0['step_ms']:.1f} ms without, and the epoch at "
        f"{w2['examples_per_s'] / w0['examples_per_s']:.2f}x the examples/s: on "
        f"{figures['machine']['cpu_count']} cores the workers run on the same cores as the "
        f"model's {figures['torch_threads']} torch threads, so what they take off the wait they "
        "can add to the step. Workers pay off when loading is costly (no cache, large images, "
        "augmentation) and cores are spare; the default data needs neither."
    )
    start, end = figures["load_average"]["start"], figures["load_average"]["end"]
    cores = figures["machine"]["cpu_count"]
    busy = max(start, end) > 0.5 * cores
    lines.append(
        f"- **The machine.** {figures['machine']['cpu']}, {cores} cores; load average "
        f"{start:.2f} at the start and {end:.2f} at the end"
        + (
            ": other work shared the cores while this ran, so absolute rates are lower and "
            "noisier than on an idle machine. The configurations were interleaved, repeat by "
            "repeat, so the ratios compare them under the same load."
            if busy
            else "."
        )
    )
    return lines


def markdown(summary: dict[str, dict], figures: dict[str, Any]) -> str:
    threads = figures["torch_threads"]
    lines = [
        "# Data loading against the model",
        "",
        f"Measured {figures['date']} by `{figures['command']}` ({figures['runtime_s']:.0f} s) on "
        f"{figures['machine']['cpu']} ({figures['machine']['cpu_count']} cores, "
        f"{figures['machine']['system']}), Python {figures['python']}, torch {figures['torch']}, "
        f"Lightning {figures['lightning']}, {threads} torch threads (the process default).",
        "",
        "The default experiment (`rolefusion-train` without overrides): synthetic role-play "
        "scenes, 2000 training examples as 64-px PNGs, batch 64 (32 batches an epoch, the last "
        "of 16), no augmentation on the training split (`data/augment=none`), channel fusion of "
        "the small CNN and the LSTM, AdamW. Everything runs in one process; each repeat runs "
        "every configuration once, in the table's order, and the table gives the median over "
        f"{figures['repeats']} repeats (every repeat is in `docs/data_loading.json`).",
        "",
        "- **Loaders**: one pass over a fresh training DataLoader (`train_dataloader()`, built "
        "anew each repeat, so persistent workers are started anew too). The first batch is "
        "fetched before the clock starts (its time, worker start-up included, is the *first "
        "batch* column); examples/s is over the other 31 batches. *cache* is the default "
        "in-memory decoded-image cache, filled when the data module reads the split; *no cache* "
        "is `data.image_cache.max_bytes=0`, which decodes every PNG on every access. Workers "
        "are `data.num_workers`.",
        "- **Model**: training steps of a freshly built default model (forward, loss, backward, "
        "AdamW step) on the epoch's 32 batches, collated into memory beforehand: one warm-up "
        "step, then 31 timed. No loading, no metrics, no Lightning: what the model can consume.",
        "- **Fit**: `Trainer.fit` of the default trainer config for one epoch, with the "
        "validation loop, logger, checkpoints and progress bar off, and a callback timing each "
        "step (`on_train_batch_start` to `on_train_batch_end`) and the wait before it (the "
        "previous `on_train_batch_end` to this `on_train_batch_start`: the next batch's fetch "
        "plus Lightning's bookkeeping between steps). The *data wait share* is the waits over "
        "the wall time from the end of the first step to the end of the last; examples/s is "
        "over that same span. The first batch's wait, from `on_train_epoch_start`, is the "
        "*first batch* column, and is left out of the share (it is paid once per fit; the "
        "share including it is in the reading below).",
        "- *vs model*: the configuration's examples/s over the model's, computed in each repeat "
        "(measured minutes apart at most) and then medianed.",
        "",
        "## Results",
        "",
        *_rows(summary),
        "",
        f"Target: a data wait share under {TARGET_WAIT_SHARE:.0%}.",
        "",
        "## Reading",
        "",
        *_reading(summary, figures),
        "",
        "## Regenerate",
        "",
        "```",
        figures["command"],
        "```",
        "",
        f"The synthetic data is generated once under `--data-dir` "
        f"(default `outputs/benchmark_data/data`).",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--fit-batches",
        type=int,
        default=None,
        help="limit_train_batches of each fit (default: the whole epoch, 32 batches)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "outputs" / "benchmark_data" / "data"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark_data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "data_loading.json")
    args = parser.parse_args()
    command = " ".join([".venv/bin/python", "scripts/benchmark_data.py", *sys.argv[1:]])
    began = time.perf_counter()
    load_start = os.getloadavg()[0]
    _quiet()

    console = Console()
    cfgs = {name: compose_default(args.data_dir, args.work, *o) for name, (_, o) in LOADERS.items()}
    fit_cfg = compose_default(args.data_dir, args.work, "trainer.max_epochs=1")
    default = cfgs["loader_cache_w0"]
    if default.seed is not None:
        L.seed_everything(default.seed, workers=True, verbose=False)
    # What the trainer config would set anyway at the first fit: the same for every measurement.
    torch.use_deterministic_algorithms(bool(default.trainer.deterministic))

    console.print("setting up the data modules (the first run generates the data set)...")
    modules = {name: prepared_datamodule(cfg) for name, cfg in cfgs.items()}
    spec = modules["loader_cache_w0"].spec
    batches = list(modules["loader_cache_w0"].train_dataloader())
    _release()

    labels = {name: label for name, (label, _) in LOADERS.items()}
    labels[MODEL] = "model: training steps on batches in memory"
    labels.update({name: label for name, (label, _) in FITS.items()})
    plan: dict[str, Callable[[], dict[str, float]]] = {
        **{name: (lambda m=modules[name]: loader_pass(m)) for name in LOADERS},
        MODEL: lambda: model_pass(default, spec, batches),
        **{
            name: (lambda m=modules[source]: fit_pass(fit_cfg, m, args.fit_batches))
            for name, (_, source) in FITS.items()
        },
    }
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
    for repeat in range(args.repeats):
        for name, measure in plan.items():
            raw[name].append(measure())
            console.print(
                f"repeat {repeat + 1}/{args.repeats} {labels[name]}: "
                f"{raw[name][-1]['examples_per_s']:,.0f} examples/s"
                + (
                    f", wait {raw[name][-1]['wait_share']:.1%}"
                    if "wait_share" in raw[name][-1]
                    else ""
                )
            )

    summary = summarise(raw, labels)
    figures = {
        "date": str(date.today()),
        "command": command,
        "runtime_s": round(time.perf_counter() - began, 1),
        "machine": {
            "system": f"{platform.system()} {platform.machine()}",
            "cpu": _cpu_model(),
            "cpu_count": os.cpu_count(),
        },
        "python": platform.python_version(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "torch_threads": torch.get_num_threads(),
        "torch_interop_threads": torch.get_num_interop_threads(),
        "load_average": {"start": round(load_start, 2), "end": round(os.getloadavg()[0], 2)},
        "repeats": args.repeats,
        "fit_batches": args.fit_batches,
        "target_wait_share": TARGET_WAIT_SHARE,
        "overrides": {name: o for name, (_, o) in LOADERS.items()},
        "summary": summary,
        "raw": raw,
    }
    print_table(summary)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(summary, figures))
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


if __name__ == "__main__":
    main()
