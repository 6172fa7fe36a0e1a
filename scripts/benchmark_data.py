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
   optimizer step) on batches collated into memory beforehand, no loading at all, with the
   process's default torch threads and, for comparison, with one;
3. the share of training step time spent waiting for data in a real ``Trainer.fit`` (the first
   ``--fit-batches`` batches of an epoch, no validation, logger and checkpoints off): time from
   ``on_train_batch_end`` to the next ``on_train_batch_start`` over the wall time of the steps,
   at 0 and 2 workers, cache on, with the default torch threads and with one.

Writes ``docs/data_loading.json`` (every repeat) and ``docs/data_loading.md`` and prints a table.

    .venv/bin/python scripts/benchmark_data.py --repeats 5 --model-batches 4 --fit-batches 5
    .venv/bin/python scripts/benchmark_data.py --report-only   # the Markdown from the JSON

Under a heavy load a step of the default model at 2 torch threads can take seconds, which is
why the model and fit passes default to a few batches each.
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
from collections.abc import Callable, Iterator
from contextlib import contextmanager
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

from rolefusion.config import register_configs
from rolefusion.config.checks import check_targets
from rolefusion.data.batch import Batch
from rolefusion.data.datamodule import DataSpec, RoleFusionDataModule
from rolefusion.runs.build import build_model, prepared_datamodule

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
MODEL_ONE_THREAD = "model_1_thread"
FITS: dict[str, tuple[str, str, int | None]] = {
    "fit_cache_w0": ("fit, cache, 0 workers (default)", "loader_cache_w0", None),
    "fit_cache_w2": ("fit, cache, 2 workers", "loader_cache_w2", None),
    "fit_cache_w0_1_thread": ("fit, cache, 0 workers, 1 torch thread", "loader_cache_w0", 1),
    "fit_cache_w2_1_thread": ("fit, cache, 2 workers, 1 torch thread", "loader_cache_w2", 1),
}
"""Fit configuration -> (label, the loader configuration whose data module it trains on, torch
threads: None for the process default)."""


def _labels() -> dict[str, str]:
    """Configuration -> its name in the tables, in the order the configurations run."""
    labels = {name: label for name, (label, _) in LOADERS.items()}
    labels[MODEL] = "model: training steps on batches in memory"
    labels[MODEL_ONE_THREAD] = "model, 1 torch thread"
    labels.update({name: label for name, (label, _, _) in FITS.items()})
    return labels


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


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` inside (None: the process default)."""
    default = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(default)


def model_pass(cfg: DictConfig, spec: DataSpec, batches: list[Batch]) -> dict[str, float]:
    """Training steps of a freshly built default model on batches already in memory: one
    untimed warm-up step, then the other batches timed."""
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
    """``Trainer.fit`` of a freshly built default model for one epoch (of ``limit_batches``
    batches, if given), no validation."""
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
    del trainer, model  # the model refers to the trainer, which holds the DataLoader
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
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    warnings.filterwarnings("ignore", message=".*srun.*")


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
    model, one = raw[MODEL], raw[MODEL_ONE_THREAD]
    summary = {}
    for name, runs in raw.items():
        keys = [k for k, v in runs[0].items() if isinstance(v, float)]
        entry = {"label": labels[name], **{k: _median(runs, k) for k in keys}}
        entry["examples_per_s_min"] = min(r["examples_per_s"] for r in runs)
        entry["examples_per_s_max"] = max(r["examples_per_s"] for r in runs)
        if name not in (MODEL, MODEL_ONE_THREAD):
            for key, reference in (("ratio_to_model", model), ("ratio_to_model_1_thread", one)):
                entry[key] = statistics.median(
                    r["examples_per_s"] / m["examples_per_s"]
                    for r, m in zip(runs, reference, strict=True)
                )
        summary[name] = entry
    return summary


COLUMNS = (
    "measurement",
    "examples/s (median)",
    "min-max over repeats",
    "vs model",
    "vs model, 1 thread",
    "first batch (s)",
    "data wait share",
)


def _cells(entry: dict[str, Any]) -> list[str]:
    first = entry.get("first_batch_s", entry.get("first_wait_s"))
    ratios = [entry.get(k) for k in ("ratio_to_model", "ratio_to_model_1_thread")]
    return [
        entry["label"],
        f"{entry['examples_per_s']:,.0f}",
        f"{entry['examples_per_s_min']:,.0f}-{entry['examples_per_s_max']:,.0f}",
        *(f"{r:,.2f}x" if r is not None else "-" for r in ratios),
        f"{first:.2f}" if first is not None else "-",
        f"{entry['wait_share']:.1%}" if "wait_share" in entry else "-",
    ]


def print_table(summary: dict[str, dict]) -> None:
    table = Table(title="Data loading vs the model (medians)")
    for column in COLUMNS:
        table.add_column(column, justify="left" if column == "measurement" else "right")
    for entry in summary.values():
        table.add_row(*_cells(entry))
    Console().print(table)


def _rows(summary: dict[str, dict]) -> list[str]:
    rows = ["| " + " | ".join(COLUMNS) + " |", "|---" + "|---:" * (len(COLUMNS) - 1) + "|"]
    rows += ["| " + " | ".join(_cells(entry)) + " |" for entry in summary.values()]
    return rows


def _overlap(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Whether two configurations' examples/s ranges over the repeats overlap."""
    return a["examples_per_s_min"] <= b["examples_per_s_max"] and (
        b["examples_per_s_min"] <= a["examples_per_s_max"]
    )


def _reading(summary: dict[str, dict], figures: dict[str, Any]) -> list[str]:
    """What the numbers say, worded from the numbers themselves. Every ratio between two
    configurations is taken within each repeat, then medianed."""
    s = summary

    def paired(a: str, b: str) -> float:
        pairs = zip(figures["raw"][a], figures["raw"][b], strict=True)
        return statistics.median(x["examples_per_s"] / y["examples_per_s"] for x, y in pairs)

    cores, default_threads = figures["machine"]["cpu_count"], figures["torch_threads"]
    # The load before the script started: at the end it includes the script's own workers.
    busy = figures["load_average"]["start"] > 0.5 * cores
    fits = [s[name] for name in FITS]
    worst = max(fits, key=lambda e: e["wait_share"])
    below = all(e["wait_share"] < TARGET_WAIT_SHARE for e in fits)
    lines = [
        f"- **In short.** {'Every' if below else 'Not every'} fit configuration keeps the data "
        f"wait under the {TARGET_WAIT_SHARE:.0%} target; the highest median share is "
        f"{worst['wait_share']:.1%} ({worst['label']}), and the default configuration's is "
        f"{s['fit_cache_w0']['wait_share']:.1%}"
        + (
            ", all measured on a busy machine, where steps are slow (see *For scale*)."
            if busy
            else ", measured on an otherwise idle machine."
        ),
    ]
    cached, uncached = s["loader_cache_w0"], s["loader_nocache_w0"]
    hit_us = 1e6 / cached["examples_per_s"]
    decode_us = 1e6 / uncached["examples_per_s"]
    lines.append(
        f"- **The cache.** In the main process the loader takes a median {hit_us:,.0f} µs per "
        f"example with the cache and {decode_us:,.0f} µs when every PNG is decoded again; repeat "
        f"by repeat, the cache makes it {paired('loader_cache_w0', 'loader_nocache_w0'):.1f}x "
        f"faster at 0 workers ({paired('loader_cache_w2', 'loader_nocache_w2'):.1f}x at 2). "
        "A cache hit still "
        "reads and hashes the file (the key is the content), so it is not free; decoding is "
        "what it saves, and the larger and more compressed the images of a real data set, the "
        "more decoding dominates and the more the cache matters."
    )
    for cache, name in (("cache", "with the cache"), ("nocache", "without it")):
        w0, w2 = s[f"loader_{cache}_w0"], s[f"loader_{cache}_w2"]
        ratio = paired(f"loader_{cache}_w2", f"loader_{cache}_w0")
        verdict = "faster" if ratio > 1.05 else "slower" if ratio < 0.95 else "no faster"
        lines.append(
            f"- **Loader workers, {name}.** 2 workers are {verdict} than loading in the main "
            f"process ({ratio:.2f}x once started), and starting them costs "
            f"{w2['first_batch_s']:.2f} s before the first batch (vs {w0['first_batch_s']:.2f} s)."
        )
    if paired("loader_cache_w2", "loader_cache_w0") < 1.05:
        lines[-2] += (
            " With every image already decoded, what is left per example is small, while the "
            f"two workers and the main process that receives their batches share {cores} cores, "
            "and each batch is pickled through shared memory on its way back."
        )
    # The stricter comparison is against the faster of the two models.
    key = min(("ratio_to_model", "ratio_to_model_1_thread"), key=lambda k: cached[k])
    fastest = s[MODEL_ONE_THREAD if key.endswith("thread") else MODEL]
    slowest = min((s[n] for n in LOADERS), key=lambda e: e[key])
    if slowest[key] > 1:
        lines.append(
            "- **Loader vs model.** Every loader configuration outruns the model, even the "
            f"faster of its two measurements ({fastest['label']}: "
            f"{fastest['examples_per_s']:,.0f} examples/s): the slowest loader "
            f"({slowest['label']}) still serves {slowest[key]:.1f}x that, and the default one "
            f"{cached['ratio_to_model']:.0f}x the model at the default threads. Loading alone "
            "is not the bottleneck of the default experiment."
        )
    else:
        behind = [s[n]["label"] for n in LOADERS if s[n][key] <= 1]
        lines.append(
            f"- **Loader vs model.** {', '.join(behind)} cannot keep up with the model "
            f"({fastest['label']}: {fastest['examples_per_s']:,.0f} examples/s): training with "
            f"{'it' if len(behind) == 1 else 'them'} waits for data."
        )
    one = paired(MODEL_ONE_THREAD, MODEL)
    lines.append(
        f"- **Torch threads.** With 1 torch thread the model runs at "
        f"{s[MODEL_ONE_THREAD]['examples_per_s']:,.0f} examples/s, {one:.2f}x the default "
        f"{default_threads} threads"
        + (
            ": on cores that other processes keep busy, a thread that waits for its sibling "
            "to be scheduled costs more than a second thread gains. The 1-thread fits are the "
            "stricter test of the target, since a faster step leaves a larger share to the wait."
            if one > 1.05
            else "."
        )
    )
    factor = (1 - TARGET_WAIT_SHARE) / TARGET_WAIT_SHARE
    batch = figures["batch_size"]
    for fit in fits:
        meets = "meets" if fit["wait_share"] < TARGET_WAIT_SHARE else "misses"
        limit_ms = factor * fit["wait_ms_per_step"]
        lines.append(
            f"- **{fit['label']}.** {fit['wait_share']:.1%} of step time goes to waiting "
            f"({fit['wait_ms_per_step']:.1f} ms between steps of {fit['step_ms']:.0f} ms): it "
            f"{meets} the {TARGET_WAIT_SHARE:.0%} target; {fit['wait_share_with_start']:.1%} "
            f"counting the first batch ({fit['first_wait_s']:.2f} s). With this wait the target "
            f"holds while a step takes over {factor:.0f}x it ({limit_ms:.0f} ms), that is while "
            f"the model consumes fewer than {batch * 1000 / limit_ms:,.0f} examples/s."
        )
    for suffix, threads in (("", f"{default_threads} torch threads"), ("_1_thread", "1 thread")):
        w0, w2 = s[f"fit_cache_w0{suffix}"], s[f"fit_cache_w2{suffix}"]
        ratio = paired(f"fit_cache_w2{suffix}", f"fit_cache_w0{suffix}")
        if _overlap(w0, w2):
            effect = (
                ", but the two ranges over the repeats overlap: no effect of the workers on "
                "training speed stands out from the machine's noise."
            )
        else:
            effect = ": the ranges over the repeats do not overlap, so 2 workers are " + (
                "faster here." if ratio > 1 else "slower here."
            )
        lines.append(
            f"- **Workers in training, {threads}.** With 2 workers the wait between steps "
            f"drops from {w0['wait_ms_per_step']:.1f} to {w2['wait_ms_per_step']:.1f} ms, the "
            f"step goes from {w0['step_ms']:.0f} to {w2['step_ms']:.0f} ms, and training runs "
            f"at {ratio:.2f}x the examples/s" + effect
        )
    default_limit_ms = factor * s["fit_cache_w0"]["wait_ms_per_step"]
    make_train = ROOT / "docs" / "make_train.json"
    if make_train.is_file():
        # 5 epochs of 32 training steps, plus validation, testing and start-up.
        earlier = json.loads(make_train.read_text())
        bound_ms = 1000 * earlier["wall_s_median"] / (5 * 32)
        lines.append(
            f"- **For scale.** `make train` (the default experiment: 5 epochs, {5 * 32} training "
            f"steps, plus validation, testing and start-up) took a median "
            f"{earlier['wall_s_median']} s in `docs/make_train.json` ({earlier['date']}, "
            f"{earlier['machine']}): under {bound_ms:.0f} ms per training step, against the "
            f"{s['fit_cache_w0']['step_ms']:.0f} ms of the default fit here."
            + (
                " The model is much faster on a quieter machine, which is when the wait share "
                "is largest. The default fit's wait, measured under this load, keeps the target "
                f"only for steps over {default_limit_ms:.0f} ms; a quiet machine shortens the "
                "wait as well as the step, so these figures do not settle whether the default "
                "run stays under the target there: rerun this script on it to know."
                if busy
                else ""
            )
        )
    start, end = figures["load_average"]["start"], figures["load_average"]["end"]
    lines.append(
        f"- **The machine.** {figures['machine']['cpu']}, {cores} cores, load average "
        f"{start:.2f} at the start and {end:.2f} at the end"
        + (
            ": other work shared the cores throughout, so rates are lower, waits and steps "
            "longer, and all of them noisier than on an idle machine (the min-max column shows "
            "how much). The configurations were interleaved, repeat by "
            "repeat, and the ratios are taken within a repeat, so they compare the "
            "configurations under the same load."
            if busy
            else " (the end includes this script's own loader workers): nothing else ran."
        )
    )
    return lines


def markdown(summary: dict[str, dict], figures: dict[str, Any]) -> str:
    threads = figures["torch_threads"]
    fit_limit = (
        f" cut to its first {figures['fit_batches']} batches (`limit_train_batches`)"
        if figures["fit_batches"]
        else ""
    )
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
        f"AdamW step) on the first {figures['model_batches'] + 1} batches of an epoch, collated "
        f"into memory beforehand: one warm-up step, then {figures['model_batches']} timed. No "
        "loading, no metrics, no Lightning: what the model can consume. Once with the "
        f"process's default {threads} torch threads (the *vs model* column), once with 1 (*vs "
        "model, 1 thread*).",
        "- **Fit**: `Trainer.fit` of the default trainer config (deterministic, as by default) "
        f"for one epoch{fit_limit}, at the default torch threads and at 1, with the "
        "validation loop, logger, checkpoints and progress bar off, and a callback timing each "
        "step (`on_train_batch_start` to `on_train_batch_end`) and the wait before it (the "
        "previous `on_train_batch_end` to this `on_train_batch_start`: the next batch's fetch "
        "plus Lightning's bookkeeping between steps). The *data wait share* is the waits over "
        "the wall time from the end of the first step to the end of the last; examples/s is "
        "over that same span. The first batch's wait, from `on_train_epoch_start`, is the "
        "*first batch* column, and is left out of the share (it is paid once per fit; the "
        "share including it is in the reading below).",
        "- *vs model* and *vs model, 1 thread*: the configuration's examples/s over the "
        "model's (at the default threads, and at 1), computed in each repeat, from measurements "
        "a minute or two apart, and then medianed.",
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
        "The synthetic data is generated once under `--data-dir` "
        "(default `outputs/benchmark_data/data`). `--report-only` rewrites this page from "
        "`docs/data_loading.json` without measuring anything.",
        "",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--model-batches",
        type=int,
        default=4,
        help="timed training steps per model pass, after one warm-up step (at most 31)",
    )
    parser.add_argument(
        "--fit-batches",
        type=int,
        default=5,
        help="limit_train_batches of each fit; 0: the whole epoch (32 batches)",
    )
    parser.add_argument(
        "--data-dir", type=Path, default=ROOT / "outputs" / "benchmark_data" / "data"
    )
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark_data")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "data_loading.json")
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="measure nothing: rewrite the Markdown (and summary) from the JSON in --out",
    )
    args = parser.parse_args()
    if args.report_only:
        figures = json.loads(args.out.read_text())
        figures["summary"] = summarise(figures["raw"], _labels())
    else:
        figures = measure(args)
    print_table(figures["summary"])
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=2) + "\n")
    args.out.with_suffix(".md").write_text(markdown(figures["summary"], figures))
    Console().print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def measure(args: argparse.Namespace) -> dict[str, Any]:
    """Run every configuration ``args.repeats`` times, interleaved; the figures for the JSON."""
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
    batches = list(modules["loader_cache_w0"].train_dataloader())[: 1 + args.model_batches]
    _release()
    fit_batches = args.fit_batches or None

    labels = _labels()
    plan: dict[str, Callable[[], dict[str, float]]] = {
        **{name: (lambda m=modules[name]: loader_pass(m)) for name in LOADERS},
        MODEL: lambda: model_pass(default, spec, batches),
        MODEL_ONE_THREAD: lambda: model_pass(default, spec, batches),
        **{
            name: (lambda m=modules[source]: fit_pass(fit_cfg, m, fit_batches))
            for name, (_, source, _) in FITS.items()
        },
    }
    raw: dict[str, list[dict[str, float]]] = {name: [] for name in plan}
    threads = {MODEL_ONE_THREAD: 1, **{name: t for name, (_, _, t) in FITS.items()}}
    for repeat in range(args.repeats):
        for name, measure in plan.items():
            with torch_threads(threads.get(name)):
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
        "batch_size": default.data.batch_size,
        "model_batches": len(batches) - 1,
        "fit_batches": fit_batches,
        "target_wait_share": TARGET_WAIT_SHARE,
        "overrides": {name: o for name, (_, o) in LOADERS.items()},
        "summary": summary,
        "raw": raw,
    }
    return figures


if __name__ == "__main__":
    main()
