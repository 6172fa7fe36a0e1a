"""Performance of the training loop: framework overhead, data supply, start-up, scaling, FLOPs.

One command, five sections (``--sections`` picks some; the sections not measured keep their
figures, and their dates, from the ``--out`` file already there):

- **overhead**: time per whole training epoch of ``rolefusion-train``'s loop against a
  hand-written PyTorch loop doing the same work, on the identical model (same seed), batches
  (``--batches`` training batches and validation batches in a real epoch's proportion, all
  collated into memory once), optimizer and learning-rate schedule, for the default experiment
  and a larger one (128 px images, transformer text encoder). ``--pairs`` pairs (default 9),
  after ``--warmup-pairs`` (default 1) that are not kept; the runner that goes first alternates
  from pair to pair (framework, hand-written; hand-written, framework; ...). Each pass builds a
  fresh model and trains it two epochs: the first warms up (first steps, first validation,
  first checkpoint write) and is not timed; the second is timed whole, synchronised with the
  GPU. Both run under the host memory reuse a ``rolefusion-train`` run sets for its process
  (:func:`made_process_wide`; its own effect: ``scripts/benchmark_host_memory.py``). The two
  sides, inside that window:

  - framework: Lightning ``Trainer.fit`` with the run's callbacks (``ModelCheckpoint`` keeping
    the best by ``val/f1`` and ``last.ckpt``, the RNG-state checkpoint callback, the non-finite
    loss guard), the CSV logger, the progress bar and the module's metrics; from
    ``on_train_epoch_start`` to ``on_train_end``, the first hook after the epoch is done. In
    the window: the training steps (forward, loss, backward, optimizer step, training metric
    updates, logging, the guard's checks), the validation pass (``val/`` metrics and loss,
    ``val/f1_best``), the checkpoint writes, the epoch-end training metrics, the logger's
    writes and the scheduler step.
  - hand-written: the same in plain PyTorch and torchmetrics, with no logger and no progress
    bar. In the window: for each batch forward, loss, ``zero_grad``, backward, optimizer step
    and the module's training metric update; a validation pass under ``torch.inference_mode``
    updating the module's ``val/`` metrics and loss, then computing them and ``val/f1_best``;
    ``torch.save`` of the model, optimizer and scheduler state to ``last.ckpt`` and, when
    ``val/f1`` improved, to a best checkpoint (deleting the previous best), as the
    ``ModelCheckpoint`` above does; computing and resetting the training metrics; the
    scheduler step.

  The figure is the median of the per-pair ratios (framework time / hand-written time) with a
  distribution-free 95% confidence interval: order statistics of the sorted ratios chosen from
  the Binomial(n, 1/2) distribution (:func:`median_ci`); no resampling, so nothing random.
- **data**: the share of training step time spent waiting for the next batch in a real fit,
  and the loader's throughput against what the model consumes (the hand-written loop's
  training-step rate).
- **startup**: wall time of ``rolefusion-train --help``, of ``import rolefusion.train``, of
  ``import torch, lightning`` (what ``--help`` no longer loads), and of a whole
  ``rolefusion-train`` run cut to one training step (command to exit).
- **scaling**: time per training epoch against data set size (1k, 4k, 16k examples at 32 px) and
  image size (32, 64, 128 px at 2k examples); linear cost means constant time per example
  (per pixel, for image size).
- **utilisation**: training FLOPs per example (torch's FLOP counter, forward and backward) times
  the framework's training-step examples/s, over this device's measured matmul peak (bf16 on a
  GPU, fp32 on a CPU): the model FLOP utilisation.

The data and start-up sections report medians over ``--repeats`` interleaved repeats. Writes
``--out`` (JSON: every pair and repeat) and the Markdown beside it, and prints the tables.

    .venv/bin/python scripts/benchmark.py        # docs/performance.{json,md}; ~35 min, 2 cores
    .venv/bin/python scripts/benchmark.py --sections overhead      # ~15 min, 2 cores
    .venv/bin/python scripts/benchmark.py --device cuda --quick --out outputs/benchmark/gpu.json
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
from lightning.pytorch.profilers import SimpleProfiler
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table
from torch.utils.flop_counter import FlopCounterMode

from benchmark_data import (
    StepTimer,
    _cpu_model,
    _quiet,
    _release,
    compose_default,
    fit_pass,
    loader_pass,
)
from benchmark_feature_cache import OUT as FEATURE_CACHE
from benchmark_feature_cache import section as feature_cache_section
from rolefusion.data.batch import Batch
from rolefusion.data.datamodule import RoleFusionDataModule
from rolefusion.models.metrics import metric_inputs
from rolefusion.runs.build import build_model, instantiate_all, prepared_datamodule
from rolefusion.runs.host_memory import reuse_freed_host_memory

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "docs" / "performance.json"
PROFILE_OUT = ROOT / "docs" / "overhead_profile.json"
"""scripts/profile_overhead.py's figures: where the overhead goes, a table in the report."""
HOST_MEMORY_OUT = ROOT / "docs" / "host_memory.json"
"""scripts/benchmark_host_memory.py's figures: epochs with and without host memory reuse."""
SECTIONS = ("overhead", "data", "startup", "scaling", "utilisation")
TARGET_THROUGHPUT = (0.98, 0.95)
"""The target: the framework's throughput over the hand-written loop's (the inverse of the time
ratio) at least 0.98 by the median pair and at least 0.95 at the 95% interval's lower end."""
EPOCHS = 2
"""Epochs per overhead pass: the first warms up, the last is timed."""
CI_METHOD = "binomial order statistics (distribution-free) of the paired ratios"
BUSY_LOAD_PER_CORE = 0.5
"""A load average at the start above this share of the cores: other work was running."""
TARGET_WAIT_SHARE = 0.10
QUICK_DATA = ["data.source.num_train=256", "data.source.num_val=64", "data.source.num_test=64",
              "data.batch_size=32"]  # fmt: skip
"""``--quick``: tiny data, to check a script runs."""
EXPERIMENTS = {
    "default": [],
    "large (128 px, transformer text)": [
        "data.source.image_size=128", "model/text_encoder=transformer",
    ],
}  # fmt: skip
console = Console()


class EpochClock(L.Callback):
    """Times training epoch ``epoch`` whole: from ``on_train_epoch_start`` to ``on_train_end``
    (fit stops after it), and to the end of its last training batch; synchronised with the GPU.

    Added after the run's callbacks, so in ``on_train_end`` it runs before the progress bar's
    and ``ModelCheckpoint``'s (which saves nothing there: ``last.ckpt`` is already written).
    """

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch
        self.start = self.train_end = self.end = self.cpu_start = self.cpu_end = 0.0
        self.faults = 0
        """Minor page faults in the epoch: memory the system had to hand the process."""

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            synchronize(module.device)
            self.start, self.cpu_start = time.perf_counter(), time.process_time()
            self.faults = -resource.getrusage(resource.RUSAGE_SELF).ru_minflt

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        if trainer.current_epoch == self.epoch and index == trainer.num_training_batches - 1:
            synchronize(module.device)  # once, as the hand-written loop does
            self.train_end = time.perf_counter()

    def on_train_end(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        synchronize(module.device)
        self.end, self.cpu_end = time.perf_counter(), time.process_time()
        self.faults += resource.getrusage(resource.RUSAGE_SELF).ru_minflt


class InMemory:
    """Batches already collated, served as one loader (Lightning reads a bare list as a list
    of loaders)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


class TimedEpochProfile(L.Callback):
    """Keeps a :class:`SimpleProfiler`'s records of epoch ``epoch`` only, the one timed."""

    def __init__(self, epoch: int) -> None:
        self.epoch = epoch

    def on_train_epoch_start(self, trainer: L.Trainer, module: L.LightningModule) -> None:
        if trainer.current_epoch == self.epoch:
            trainer.profiler.recorded_durations.clear()


class Sections:
    """Wall time of the named sections of the hand-written loop's timed epoch; a name used
    twice adds up (scripts/profile_overhead.py)."""

    def __init__(self, device: torch.device) -> None:
        self.device = device
        self.seconds: defaultdict[str, float] = defaultdict(float)

    @contextmanager
    def section(self, name: str) -> Iterator[None]:
        synchronize(self.device)
        start = time.perf_counter()
        try:
            yield
        finally:
            synchronize(self.device)
            self.seconds[name] += time.perf_counter() - start


def _untimed(name: str) -> AbstractContextManager[None]:
    return nullcontext()


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def seeded(cfg: DictConfig) -> None:
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)


def fresh_dir(path: Path) -> Path:
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    return path


def framework_pass(
    cfg: DictConfig,
    data: RoleFusionDataModule,
    batches: list[Batch],
    val: list[Batch],
    profiler: SimpleProfiler | None = None,
) -> dict[str, Any]:
    """``Trainer.fit`` as ``rolefusion-train`` sets it up, for ``EPOCHS`` epochs; the last one
    timed whole (see the module's docstring). With ``profiler``, Lightning's, its records of the
    timed epoch are returned too (``profile``: action -> seconds in all)."""
    fresh_dir(Path(cfg.paths.output_dir))  # checkpoints and CSV as in a new run
    seeded(cfg)
    model = build_model(cfg, data.spec)
    clock = EpochClock(EPOCHS - 1)
    profiled = [TimedEpochProfile(EPOCHS - 1)] if profiler else []
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[*instantiate_all(cfg.callbacks), clock, *profiled],
        logger=instantiate_all(cfg.logger) or False, max_epochs=EPOCHS, num_sanity_val_steps=0,
        enable_model_summary=False, default_root_dir=cfg.paths.output_dir, profiler=profiler,
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=InMemory(batches), val_dataloaders=InMemory(val))
    val_f1 = float(trainer.callback_metrics["val/f1"])
    del trainer, model
    _release()
    return {
        "epoch_s": clock.end - clock.start,
        "train_s": clock.train_end - clock.start,
        "cpu_s": clock.cpu_end - clock.cpu_start,
        "page_faults": clock.faults,
        "val_f1": val_f1,
        **({"profile": {a: sum(d) for a, d in profiler.recorded_durations.items()}}
           if profiler else {}),
    }  # fmt: skip


def hand_step(
    model: L.LightningModule, batch: Batch, bf16: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """The loss and logits of one batch, as the module's ``_step`` computes them."""
    with torch.autocast(batch.label.device.type, dtype=torch.bfloat16, enabled=bf16):
        logits = model.net(batch)
        target = batch.label.float() if model.task == "multilabel" else batch.label
        return model.loss(logits, target), logits


def hand_written_pass(
    cfg: DictConfig,
    data: RoleFusionDataModule,
    batches: list[Batch],
    val: list[Batch],
    sections: Sections | None = None,
) -> dict[str, Any]:
    """The loop one would write by hand doing the framework's work (see the module's
    docstring), on the same model, batches, optimizer, schedule and precision, for ``EPOCHS``
    epochs; the last one timed whole. With ``sections``, the timed epoch's parts are timed
    into it as well."""
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    # What the Trainer sets for the whole process: set here too, whichever pass runs first.
    torch.use_deterministic_algorithms(bool(cfg.trainer.get("deterministic") or False))
    checkpoints = fresh_dir(Path(cfg.paths.output_dir) / "checkpoints")
    seeded(cfg)
    model = build_model(cfg, data.spec).to(device)
    if cfg.model.compile:
        model.net.compile(mode=None if cfg.model.compile is True else cfg.model.compile)
    optimizer = model.optimizer_factory(params=model.parameters())
    scheduler = model.scheduler_factory(optimizer=optimizer) if model.scheduler_factory else None
    bf16 = "bf16" in str(cfg.trainer.get("precision"))
    val_loss = model.eval_losses["val"]
    best_f1, best_path = None, None

    start = train_end = end = cpu_start = cpu_end = 0.0
    for epoch in range(EPOCHS):
        timed: Callable[[str], AbstractContextManager[None]] = (
            sections.section if sections and epoch == EPOCHS - 1 else _untimed
        )
        synchronize(device)
        start, cpu_start = time.perf_counter(), time.process_time()
        model.train()
        for batch in batches:
            batch = batch.to(device, non_blocking=True)
            with timed("forward, loss, metric update"):
                loss, logits = hand_step(model, batch, bf16)
            with timed("zero_grad"):
                optimizer.zero_grad(set_to_none=True)
            with timed("backward"):
                loss.backward()
            with timed("optimizer step"):
                optimizer.step()
            with timed("forward, loss, metric update"):
                model.train_metrics.update(*metric_inputs(model.task, logits, batch.label))
        synchronize(device)
        train_end = time.perf_counter()
        model.eval()
        with torch.inference_mode():
            for batch in val:
                batch = batch.to(device, non_blocking=True)
                loss, logits = hand_step(model, batch, bf16)
                model.val_metrics.update(*metric_inputs(model.task, logits, batch.label))
                val_loss.update(loss.detach(), weight=len(batch))
        scores = {**model.val_metrics.compute(), "val/loss": val_loss.compute()}
        model.val_metrics.reset()
        val_loss.reset()
        model.val_f1_best.update(scores["val/f1"])
        scores["val/f1_best"] = model.val_f1_best.compute()
        f1 = float(scores["val/f1"])
        with timed("checkpoint writes"):
            state = {
                "epoch": epoch,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict() if scheduler else None,
            }
            if best_f1 is None or f1 > best_f1:
                best_f1, previous = f1, best_path
                best_path = checkpoints / f"epoch{epoch:03d}_val-f1_{f1:.4f}.ckpt"
                torch.save(state, best_path)
                if previous is not None:
                    previous.unlink()
            torch.save(state, checkpoints / "last.ckpt")
        model.train_metrics.compute()
        model.train_metrics.reset()
        if scheduler:
            scheduler.step()
        synchronize(device)
        end, cpu_end = time.perf_counter(), time.process_time()
    del model, optimizer, scheduler
    _release()
    return {
        "epoch_s": end - start,
        "train_s": train_end - start,
        "cpu_s": cpu_end - cpu_start,
        "val_f1": f1,
        **({"sections": dict(sections.seconds)} if sections else {}),
    }


def experiment(
    args: argparse.Namespace, *overrides: str
) -> tuple[DictConfig, RoleFusionDataModule]:
    cfg = compose_default(args.data_dir, args.work, *args.base, *overrides)
    seeded(cfg)
    return cfg, prepared_datamodule(cfg)


def made_process_wide(cfg: DictConfig) -> None:
    """What a ``rolefusion-train`` run sets for its whole process (host memory reuse), set here
    for the benchmark's, so that the hand-written loop runs under it too and only the loops
    differ. Its own effect is measured by scripts/benchmark_host_memory.py."""
    reuse = cfg.callbacks.get("host_memory_reuse")
    if reuse is not None:
        reuse_freed_host_memory(reuse.max_bytes)


def median_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """Distribution-free confidence interval for the median of ``values``.

    The order statistics ``x_(k)`` and ``x_(n+1-k)`` of the sorted values, for the largest
    ``k`` whose two tails ``2 P(B <= k-1)``, ``B ~ Binomial(n, 1/2)``, are at most
    ``1 - level``: the interval holds the population median with probability
    ``1 - 2 P(B <= k-1) >= level`` whatever the distribution (continuous). For 9 values at 95%
    those are the 2nd and 8th (coverage 96.1%). Returns ``(lower, upper, coverage)``; with too
    few values for the level (under 6 at 95%) the interval is the whole range and the
    coverage, below ``level``, says so.
    """
    xs = sorted(values)
    n = len(xs)
    if n == 0:
        raise ValueError("median_ci: no values")

    def tails(k: int) -> float:  # 2 P(B <= k - 1)
        return 2 * sum(math.comb(n, i) for i in range(k)) / 2**n

    k = 1
    while k + 1 <= (n + 1) // 2 and tails(k + 1) <= 1 - level + 1e-12:
        k += 1
    return xs[k - 1], xs[n - k], max(0.0, 1 - tails(k))


def _percent(ratio: float) -> str:
    return f"{100 * (ratio - 1):+.1f}%".replace("-", "−")


def overhead_sentence(median: float, lower: float, upper: float) -> str:
    """The framework's overhead in words, from the median paired ratio (framework time /
    hand-written time) and its 95% interval.

    An interval holding 1: "no overhead detected within ±x%", x the interval's farther end
    from 1, rounded up to a tenth of a percent. Otherwise the overhead, the median less 1, with
    its interval, in percent (negative: the framework was the faster).
    """
    if not lower <= median <= upper:
        raise ValueError(f"expected lower <= median <= upper, got {lower}, {median}, {upper}")
    if lower <= 1 <= upper:
        # round() first, so 1.05 - 1 = 0.05000000000000004 reads 5.0, not 5.1.
        within = math.ceil(round(1000 * max(1 - lower, upper - 1), 6)) / 10
        return f"no overhead detected within ±{within:.1f}%"
    faster = "; the framework was the faster" if upper < 1 else ""
    return (
        f"an overhead of {_percent(median)} (95% CI {_percent(lower)} to {_percent(upper)}{faster})"
    )


def add_pass_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the scripts that run this module's passes on its experiments."""
    parser.add_argument("--batches", type=int, default=12, help="training batches per epoch")
    parser.add_argument(
        "--experiments", nargs="+", choices=[name.split()[0] for name in EXPERIMENTS],
        default=[name.split()[0] for name in EXPERIMENTS],
    )  # fmt: skip
    parser.add_argument("--data-dir", type=Path, default=ROOT / "outputs" / "benchmark" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark")


def epoch_batches(data: RoleFusionDataModule, count: int) -> tuple[list[Batch], list[Batch]]:
    """The first ``count`` training batches and validation batches in a real epoch's
    proportion, collated into memory once."""
    train_loader = data.train_dataloader()
    batches = list(train_loader)[:count]
    val_loader = data.val_dataloader()
    share = len(val_loader) / len(train_loader)
    return batches, list(val_loader)[: max(1, round(len(batches) * share))]


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for name, overrides in EXPERIMENTS.items():
        cfg, data = experiment(args, *overrides)
        made_process_wide(cfg)
        batches, val = epoch_batches(data, args.batches)
        runners = {"framework": framework_pass, "hand_written": hand_written_pass}
        warmup, pairs = [], []
        for index in range(-args.warmup_pairs, args.pairs):
            # Kept pairs alternate who goes first (ABBA ...); warm-up pairs run the framework first.
            order = ["framework", "hand_written"][:: -1 if index >= 0 and index % 2 else 1]
            pair: dict[str, Any] = {"order": order, "load_average": os.getloadavg()[0]}
            for runner in order:
                pair[runner] = runners[runner](cfg, data, batches, val)
            pair["ratio"] = pair["framework"]["epoch_s"] / pair["hand_written"]["epoch_s"]
            pair["cpu_ratio"] = pair["framework"]["cpu_s"] / pair["hand_written"]["cpu_s"]
            (pairs if index >= 0 else warmup).append(pair)
            console.print(
                f"overhead {name} {'pair' if index >= 0 else 'warm-up'} {max(index, 0)} "
                f"({order[0]} first): framework {pair['framework']['epoch_s']:.2f} s, "
                f"hand-written {pair['hand_written']['epoch_s']:.2f} s per epoch, "
                f"ratio {pair['ratio']:.3f}"
            )
        ratios = [pair["ratio"] for pair in pairs]
        cpu_ratios = [pair["cpu_ratio"] for pair in pairs]
        lower, upper, coverage = median_ci(ratios)
        median = statistics.median(ratios)
        examples = sum(len(batch) for batch in batches)
        results[name] = {
            "pairs": pairs,
            "warmup_pairs": warmup,
            "ratios": ratios,
            "median_ratio": median,
            "ci95": {"lower": lower, "upper": upper, "coverage": coverage, "method": CI_METHOD},
            "sentence": overhead_sentence(median, lower, upper),
            "cpu_ratios": cpu_ratios,
            "median_cpu_ratio": statistics.median(cpu_ratios),
            "cpu_ci95": dict(
                zip(("lower", "upper", "coverage"), median_ci(cpu_ratios), strict=True)
            ),
            **{
                f"{runner}_{key}": statistics.median(p[runner][key] for p in pairs)
                for runner in runners
                for key in ("epoch_s", "train_s", "cpu_s")
            },
            **{
                f"{runner}_examples_per_s": statistics.median(
                    examples / p[runner]["train_s"] for p in pairs
                )
                for runner in runners
            },
            "train_batches": len(batches),
            "val_batches": len(val),
            "batch_size": cfg.data.batch_size,
            "train_examples_per_epoch": examples,
        }
    return results


def data_supply(args: argparse.Namespace, hand_rate: float | None) -> dict[str, Any]:
    cfg, data = experiment(args)
    fits, loaders = [], []
    for _ in range(args.repeats):
        fits.append(fit_pass(cfg, data, args.batches))
        loaders.append(loader_pass(data)["examples_per_s"])
    wait = statistics.median(f["wait_share"] for f in fits)
    return {
        "wait_share": wait,
        "wait_shares": [f["wait_share"] for f in fits],
        "loader_examples_per_s": statistics.median(loaders),
        "model_examples_per_s": hand_rate,
        "loader_over_model": statistics.median(loaders) / hand_rate if hand_rate else None,
    }


def timed(command: Sequence[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def startup(args: argparse.Namespace) -> dict[str, Any]:
    python = sys.executable
    train = shutil.which("rolefusion-train", path=str(Path(python).parent)) or "rolefusion-train"
    one_step = [
        train, *args.base, f"paths.data_dir={args.data_dir}", f"paths.log_dir={args.work}/startup",
        "++trainer.max_steps=1", "++trainer.limit_val_batches=0", "test=false", "logger=none",
        "callbacks=none",
    ]  # fmt: skip
    commands = {
        "rolefusion-train --help": [train, "--help"],
        "import rolefusion.train": [python, "-c", "import rolefusion.train"],
        "import torch, lightning": [python, "-c", "import torch, lightning"],
        "rolefusion-train, one step (command to exit)": one_step,
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(timed(command))
    for name, values in times.items():
        console.print(f"startup {name}: {statistics.median(values):.2f} s")
    return {name: {"median_s": statistics.median(v), "runs_s": v} for name, v in times.items()}


def epoch_seconds(args: argparse.Namespace, *overrides: str) -> float:
    """One full training epoch (data loading included, no validation) of a fresh model."""
    cfg, data = experiment(args, *overrides)
    model = build_model(cfg, data.spec)
    timer = StepTimer()
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[timer], logger=False, enable_checkpointing=False,
        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0,
        num_sanity_val_steps=0, max_epochs=1,
    )  # fmt: skip
    trainer.fit(model, datamodule=data)
    del trainer, model, data
    _release()
    return timer.first_wait + sum(timer.waits) + sum(timer.steps)


def scaling(args: argparse.Namespace) -> dict[str, Any]:
    sizes = [int(n) for n in args.scaling_sizes]
    pixels = [int(p) for p in args.scaling_images]
    runs = {
        **{f"n={n}": [f"data.source.num_train={n}", "data.source.image_size=32"] for n in sizes},
        **{f"px={p}": [f"data.source.num_train={sizes[0] * 2}", f"data.source.image_size={p}"]
           for p in pixels},
    }  # fmt: skip
    times: dict[str, list[float]] = {name: [] for name in runs}
    for overrides in runs.values():
        experiment(args, *overrides)  # generate the data set before any clock runs
    for _ in range(args.scaling_repeats):
        for name, overrides in runs.items():
            times[name].append(epoch_seconds(args, *overrides))
            console.print(f"scaling {name}: {times[name][-1]:.2f} s/epoch")
    by_size = [{"examples": n, "epoch_s": statistics.median(times[f"n={n}"])} for n in sizes]
    by_image = [
        {"pixels": p, "examples": sizes[0] * 2, "epoch_s": statistics.median(times[f"px={p}"])}
        for p in pixels
    ]
    for row in by_size:
        row["ms_per_example"] = 1000 * row["epoch_s"] / row["examples"]
    for row in by_image:
        row["us_per_pixel_example"] = 1e6 * row["epoch_s"] / row["examples"] / row["pixels"] ** 2
    return {"by_data_size": by_size, "by_image_size": by_image, "runs_s": times}


def matmul_peak(device: torch.device) -> dict[str, Any]:
    """FLOP/s of large square matmuls: bf16 on a GPU, fp32 on a CPU; the best of several."""
    size, dtype = (8192, torch.bfloat16) if device.type == "cuda" else (1024, torch.float32)
    a = torch.randn(size, size, device=device, dtype=dtype)
    b = torch.randn(size, size, device=device, dtype=dtype)
    rates = []
    for _ in range(6):
        synchronize(device)
        start = time.perf_counter()
        for _ in range(4):
            a @ b
        synchronize(device)
        rates.append(4 * 2 * size**3 / (time.perf_counter() - start))
    return {"flops_per_s": max(rates[1:]), "dtype": str(dtype).removeprefix("torch."), "n": size}


def utilisation(args: argparse.Namespace, framework_rate: float | None) -> dict[str, Any]:
    cfg, data = experiment(args)
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    model = build_model(cfg, data.spec).to(device).train()
    batch = next(iter(data.train_dataloader())).to(device)
    with FlopCounterMode(display=False) as counter:
        model.loss(model.net(batch), batch.label).backward()
    per_example = counter.get_total_flops() / len(batch)
    peak = matmul_peak(device)
    achieved = per_example * framework_rate if framework_rate else None
    return {
        "training_flops_per_example": per_example,
        "peak": peak,
        "achieved_flops_per_s": achieved,
        "mfu": achieved / peak["flops_per_s"] if achieved else None,
    }


SECTION_NAMES = {
    "overhead": "framework overhead",
    "data": "data supply",
    "startup": "start-up",
    "scaling": "scaling",
    "utilisation": "model FLOP utilisation",
}


def busy(run: dict[str, Any]) -> bool:
    """Whether other work was running when ``run`` started (its load average at the start)."""
    cores = run.get("cores")
    return bool(cores) and run["load_average"]["start"] >= BUSY_LOAD_PER_CORE * cores


def plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "es" if noun.endswith("ch") else "s")


def describe_run(number: int, run: dict[str, Any]) -> str:
    sections = ", ".join(SECTION_NAMES[s] for s in run["sections"])
    what = []
    if "overhead" in run["sections"] and run.get("pairs"):
        what.append(f"{run['pairs']} framework/hand-written pairs")
    if set(run["sections"]) & {"data", "startup"}:
        what.append(f"medians of {plural(run['repeats'], 'interleaved repeat')}")
    load = run["load_average"]
    text = (
        f"- Run {number} ({sections}): {run['date']}, `{run['command']}` on {run['machine']} "
        f"(torch {run['torch']}, Lightning {run['lightning']}, "
        f"{plural(run['threads'], 'torch thread')}; "
        f"load average {load['start']} at the start, {load['end']} at the end"
        + (f"; {run['runtime_s'] / 60:.0f} min" if run.get("runtime_s") else "")
        + ")"
        + (f"; {', '.join(what)}" if what else "")
        + "."
    )
    if run.get("note"):
        text += " " + run["note"]
    if busy(run):
        text += (
            f" Other work had been running on the machine: the load average (of the last "
            f"minute) was {load['start']} on {run['cores']} cores when the run started, so its "
            "absolute times may be slower and noisier than an idle machine's; read the ratios, "
            "measured side by side."
        )
    return text


def measured(figures: dict[str, Any], section: str) -> list[str]:
    for number, run in enumerate(figures.get("runs", []), 1):
        if section in run["sections"]:
            return [f"_Measured {run['date']} (run {number})._", ""]
    return []


def overhead_lines(figures: dict[str, Any]) -> list[str]:
    rows = {name: row for name, row in figures["overhead"].items() if "median_ratio" in row}
    if not rows:
        return []
    first = next(iter(rows.values()))
    n, coverage = len(first["ratios"]), first["ci95"]["coverage"]
    lines = [
        "## Framework overhead",
        "",
        *measured(figures, "overhead"),
        "Time per whole training epoch of `rolefusion-train`'s loop (Lightning `Trainer.fit` "
        "with the run's callbacks, CSV logger, progress bar and metrics) over that of a "
        "hand-written PyTorch loop doing the same work, on the same model (same seed), batches "
        "(collated in memory once), optimizer and learning-rate schedule. Each pass trains a "
        f"fresh model {EPOCHS} epochs and times the last whole: its "
        f"{first['train_batches']} training steps of {first['batch_size']} examples, validation "
        f"({plural(first['val_batches'], 'batch')}, in a real epoch's proportion; the same "
        "metrics), the checkpoint writes (the best by `val/f1`, and `last.ckpt`), the epoch-end "
        "metrics and the scheduler step; the hand-written loop has no logger and no progress "
        "bar (exactly what each side does: the docstring of `scripts/benchmark.py`). "
        f"{plural(n, 'pair')} after {plural(len(first.get('warmup_pairs', [])), 'warm-up pair')} "
        "not kept, the runner that goes first alternating from pair to pair. The figure is "
        "the median of the per-pair ratios (framework time / hand-written time: above 1, the "
        "framework is slower) with a distribution-free 95% confidence interval, the order "
        "statistics of the sorted ratios given by the Binomial(n, 1/2) distribution (coverage "
        f"{coverage:.1%} for {n} pairs). Target: the framework's throughput at least "
        f"{TARGET_THROUGHPUT[0]} of the hand-written loop's by the median and at least "
        f"{TARGET_THROUGHPUT[1]} at the interval's lower end, that is a time ratio of at most "
        f"{1 / TARGET_THROUGHPUT[0]:.3f} by the median and {1 / TARGET_THROUGHPUT[1]:.3f} at the "
        "upper end. Both loops run under the host memory reuse `rolefusion-train` sets for its "
        "process (below), so that only the loops differ.",
        "",
        "| experiment | framework s/epoch | hand-written s/epoch | median ratio | 95% CI | "
        "in words | target met |",
        "|---|---:|---:|---:|---|---|---|",
    ]
    for name, row in rows.items():
        ci = row["ci95"]
        met = (
            row["median_ratio"] <= 1 / TARGET_THROUGHPUT[0]
            and ci["upper"] <= 1 / (TARGET_THROUGHPUT[1])
        )
        lines.append(
            f"| {name} | {row['framework_epoch_s']:.2f} | {row['hand_written_epoch_s']:.2f} | "
            f"**{row['median_ratio']:.3f}** | {ci['lower']:.3f}–{ci['upper']:.3f} | "
            f"{row['sentence']} | {'yes' if met else 'no'} |"
        )
    lines += [
        "",
        "Every pair, in order (F: the framework ran first, H: the hand-written loop did):",
        "",
        "| experiment | framework / hand-written time per epoch |",
        "|---|---|",
    ]
    for name, row in rows.items():
        pairs = ", ".join(
            f"{p['ratio']:.3f} ({'F' if p['order'][0] == 'framework' else 'H'})"
            for p in row["pairs"]
        )
        lines.append(f"| {name} | {pairs} |")
    lines += [
        "",
        "The median ratio by the runner that went first (what alternating the order balances), "
        "and the ratio of process CPU time (all threads) over the same windows, less sensitive "
        "than wall time to other work taking the cores, though threads spinning while they "
        "wait for one another count in it:",
        "",
        "| experiment | framework first | hand-written first | CPU time: median ratio (95% CI) |",
        "|---|---:|---:|---:|",
    ]
    for name, row in rows.items():
        by_first = [
            [p["ratio"] for p in row["pairs"] if p["order"][0] == first]
            for first in ("framework", "hand_written")
        ]
        cells = [
            f"{statistics.median(ratios):.3f} ({plural(len(ratios), 'pair')})" if ratios else "–"
            for ratios in by_first
        ]
        ci = row.get("cpu_ci95")
        cells.append(
            f"{row['median_cpu_ratio']:.3f} ({ci['lower']:.3f}–{ci['upper']:.3f})" if ci else "–"
        )
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    gaps = [
        abs(p["framework"]["val_f1"] - p["hand_written"]["val_f1"])
        for row in rows.values()
        for p in row["pairs"]
    ]
    lines += [
        "",
        "Both loops end every pass with the same `val/f1`: they train the same model on the "
        "same batches."
        if max(gaps) < 1e-6
        else f"The two loops' final `val/f1` differ by up to {max(gaps):.4f} within a pair.",
        "",
    ]
    return lines


SHARED_COMPUTE = ("forward, loss, metric update", "zero_grad", "backward", "optimizer step")
"""The profile's rows both loops run the same code in: their gaps are noise."""


def overhead_profile_lines(profile: dict[str, Any]) -> list[str]:
    """Where the framework's time per step goes, against the hand-written loop's."""
    load = profile["load_average"]
    lines = [
        "### Where the overhead goes",
        "",
        f"_Measured {profile['date']}: `{profile['command']}` on {profile['machine']} "
        f"(torch {profile['torch']}, Lightning {profile['lightning']}, {profile['threads']} "
        f"torch threads; load average {load['start']} at the start, {load['end']} at the end)._"
        + (f" {profile['note']}" if profile.get("note") else ""),
        "",
        "The same two loops on the same batches, profiled: Lightning's `SimpleProfiler` on the "
        "framework (every hook, callback and strategy call), a timer around each part of the "
        "hand-written loop; per-epoch work (validation, checkpoints) divided by the steps. "
        "Medians over pairs whose order alternates; the gap is the median of the per-pair "
        "differences, so rows need not add up to the total's. The profiler's own cost (a few "
        "microseconds per recorded call) falls in the rest of the loop.",
        "",
    ]
    for name, e in profile["experiments"].items():
        lines += [
            f"**{name}**: {e['steps']} training steps of {e['batch_size']} examples, "
            f"{len(e['pairs'])} pairs.",
            "",
            "| ms per training step | framework | hand-written | gap |",
            "|---|---:|---:|---:|",
            *(
                f"| {r['row']} | {r['framework_ms']:.2f} | {r['hand_written_ms']:.2f} | "
                f"{r['gap_ms']:+.2f} |"
                for r in e["rows"]
            ),
            f"| **whole epoch** | **{e['framework_ms']:.1f}** | **{e['hand_written_ms']:.1f}** "
            f"| **{e['gap_ms']:+.1f}** |",
            "",
        ]
        own = sum(r["gap_ms"] for r in e["rows"] if r["row"] not in SHARED_COMPUTE)
        lines += [
            f"The framework's own work, the gaps of every row but the shared computation "
            f"({', '.join(SHARED_COMPUTE)}): **{own:.2f} ms a step, {own / e['framework_ms']:.1%} "
            "of its epoch**. The shared rows differ from pair to pair by what the machine does "
            "to both loops alike (several milliseconds a step, either way), which is why the "
            "overhead's size is the paired measurement above and this table says where it goes.",
            "",
        ]
    return lines


def host_memory_lines(figures: dict[str, Any]) -> list[str]:
    """Time per epoch with host memory reuse against without, in fresh processes."""
    load = figures["load_average"]
    lines = [
        "### Host memory reuse",
        "",
        f"_Measured {figures['date']}: `{figures['command']}` on {figures['machine']} (torch "
        f"{figures['torch']}, Lightning {figures['lightning']}; load average {load['start']} at "
        f"the start, {load['end']} at the end)._",
        "",
        "glibc's malloc gives every large block (a batch's activations, its gradients) back to "
        "the system when it is freed, and the next step faults the same memory in again, page "
        "by page. `callbacks.host_memory_reuse` (`rolefusion.runs.host_memory`) has it keep "
        "freed blocks of up to 1 GiB for reuse. The framework's loop as above, each pass in a "
        "fresh process with the run's callbacks or with them less `host_memory_reuse`, pairs "
        "alternating which goes first; ratio: time per epoch with reuse / without.",
        "",
        "| experiment | s/epoch without | s/epoch with | median ratio | 95% CI | pairs |",
        "|---|---:|---:|---:|---|---:|",
    ]
    for name, e in figures["experiments"].items():
        ci = e["ci95"]
        lines.append(
            f"| {name} | {e['no_reuse_epoch_s']:.2f} | {e['reuse_epoch_s']:.2f} | "
            f"**{e['median_ratio']:.3f}** | {ci['lower']:.3f}–{ci['upper']:.3f} | "
            f"{len(e['pairs'])} |"
        )
    return [*lines, ""]


def rewrite_report(out: Path = OUT, feature_cache: dict[str, Any] | None = None) -> None:
    """``performance.md`` beside ``out`` again from the figures already measured: ``out``'s,
    ``feature_cache`` (by default the feature cache benchmark's file) and the profile's."""
    if feature_cache is None and FEATURE_CACHE.exists():
        feature_cache = json.loads(FEATURE_CACHE.read_text())
    profile = json.loads(PROFILE_OUT.read_text()) if PROFILE_OUT.exists() else None
    reuse = json.loads(HOST_MEMORY_OUT.read_text()) if HOST_MEMORY_OUT.exists() else None
    report = markdown(json.loads(out.read_text()), feature_cache, profile, reuse)
    out.with_suffix(".md").write_text(report + "\n")


def markdown(
    figures: dict[str, Any],
    feature_cache: dict[str, Any] | None = None,
    profile: dict[str, Any] | None = None,
    host_memory: dict[str, Any] | None = None,
) -> str:
    """The report; with ``feature_cache``, the figures of scripts/benchmark_feature_cache.py,
    its section too, with ``profile`` (scripts/profile_overhead.py) where the overhead goes,
    and with ``host_memory`` (scripts/benchmark_host_memory.py) what host memory reuse saves."""
    runs = figures.get("runs") or [
        {"sections": [s for s in SECTIONS if s in figures]}
        | {key: figures[key] for key in RUN_KEYS if key in figures}
    ]
    lines = [
        "# Performance",
        "",
        "Ratios are taken between measurements made side by side in one run. The runs:",
        "",
        *(describe_run(number, run) for number, run in enumerate(runs, 1)),
        "",
    ]
    if "overhead" in figures:
        lines += overhead_lines(figures)
    if profile:
        lines += overhead_profile_lines(profile)
    if host_memory:
        lines += host_memory_lines(host_memory)
    if "data" in figures:
        d = figures["data"]
        lines += [
            "## Data supply",
            "",
            *measured(figures, "data"),
            f"- Share of training step time waiting for the next batch in a default fit: "
            f"**{d['wait_share']:.1%}** (target under {TARGET_WAIT_SHARE:.0%}; runs: "
            + ", ".join(f"{w:.1%}" for w in d["wait_shares"])
            + ").",
        ]
        if d["loader_over_model"]:
            lines.append(
                f"- The loader serves {d['loader_examples_per_s']:,.0f} examples/s, the model "
                f"consumes {d['model_examples_per_s']:,.0f}: **{d['loader_over_model']:.1f}x** "
                "headroom. More in [data_loading.md](data_loading.md)."
            )
        lines.append("")
    if "startup" in figures:
        lines += [
            "## Start-up",
            "",
            *measured(figures, "startup"),
            "| command | median wall time (s) |",
            "|---|---:|",
        ]
        for name, row in figures["startup"].items():
            lines.append(f"| `{name}` | {row['median_s']:.2f} |")
        lines += [
            "",
            "`rolefusion-train --help` composes the configuration without loading torch or "
            "Lightning: the commands import them only once a run starts. The one-step run "
            "includes reading the cached data set and building the model.",
            "",
        ]
    if "scaling" in figures:
        s = figures["scaling"]
        lines += [
            "## Scaling",
            "",
            *measured(figures, "scaling"),
            "One full training epoch (loading included, no validation), median over repeats.",
            "",
            "| examples (32 px) | s/epoch | ms/example |",
            "|---:|---:|---:|",
        ]
        for row in s["by_data_size"]:
            lines.append(
                f"| {row['examples']:,} | {row['epoch_s']:.1f} | {row['ms_per_example']:.2f} |"
            )
        lines += ["", "| image size | s/epoch | µs per pixel-example |", "|---:|---:|---:|"]
        for row in s["by_image_size"]:
            lines.append(
                f"| {row['pixels']} px | {row['epoch_s']:.1f} | {row['us_per_pixel_example']:.3f} |"
            )
        lines += ["", linearity(s), ""]
    if "utilisation" in figures and figures["utilisation"]["mfu"] is not None:
        u = figures["utilisation"]
        lines += [
            "## Model FLOP utilisation",
            "",
            *measured(figures, "utilisation"),
            f"{u['training_flops_per_example'] / 1e6:,.1f} MFLOPs per training example (forward "
            f"and backward, torch's FLOP counter) at the framework's rate: "
            f"{u['achieved_flops_per_s'] / 1e9:,.2f} GFLOP/s, against a measured "
            f"{u['peak']['dtype']} matmul peak of {u['peak']['flops_per_s'] / 1e9:,.1f} GFLOP/s "
            f"({u['peak']['n']}x{u['peak']['n']}): **MFU {u['mfu']:.1%}**.",
            "",
        ]
    if feature_cache:
        lines += feature_cache_section(feature_cache)
    return "\n".join([*lines, *GPU_AND_DISTRIBUTED])


GPU_AND_DISTRIBUTED = [
    "## The GPU path",
    "",
    "`trainer=gpu` turns on bf16 mixed precision, and through `${rf.on_gpu:}` channels-last "
    "images and convolution weights (`model.channels_last`) and pinned host memory "
    "(`data.pin_memory`); `data.persistent_workers` is on by default, so set "
    "`data.num_workers` to use it. `model.compile=true` (or a mode such as `max-autotune`) "
    "compiles the network in place, so checkpoints keep their parameter names and evaluate "
    "uncompiled. The default widths (`model.dim=128`, hidden sizes) are multiples of 8, as "
    "Tensor Cores want.",
    "",
    "`scripts/gpu_check.sh` runs the overhead, data and utilisation sections on a CUDA GPU "
    "within a 7-minute timeout (`COMPILE=1` for the compiled model) and writes "
    "`outputs/benchmark/gpu.md`. "
    "Its figures belong here once measured on a GPU; none has been lent to this project yet, "
    "so the GPU path is tested only on CPU (the configuration it composes, channels-last "
    "giving the same logits, a compiled run whose checkpoint evaluates uncompiled).",
    "",
    "## Distributed runs",
    "",
    "`trainer=ddp` (every GPU of a node) and `trainer=ddp_sim` (two CPU processes, gloo) write "
    "the same `metrics.json` as one process. Validation and test give each rank its own share "
    "of the split with nothing repeated (an unrepeated distributed sampler: ranks may differ "
    "by one example), the loss is averaged over examples by a metric rather than over ranks, "
    "and every metric is summed across ranks before it is computed. No batch is skipped. A "
    "slow test trains with `ddp_sim` on a 33-example test split and compares the metrics and "
    "the confusion matrix with a single-process evaluation of the same checkpoint.",
    "",
]


def linearity(s: dict[str, Any]) -> str:
    per_example = [row["ms_per_example"] for row in s["by_data_size"]]
    per_pixel = [row["us_per_pixel_example"] for row in s["by_image_size"]]
    return (
        f"Time per example varies {max(per_example) / min(per_example):.2f}x across a "
        f"{s['by_data_size'][-1]['examples'] // s['by_data_size'][0]['examples']}x range of data "
        f"set sizes, and time per pixel {max(per_pixel) / min(per_pixel):.2f}x across a "
        f"{(s['by_image_size'][-1]['pixels'] // s['by_image_size'][0]['pixels']) ** 2}x range of "
        "pixel counts: "
        + ("cost grows linearly with data set size" if max(per_example) / min(per_example) < 1.25
           else "cost grows faster than linearly with data set size")
        + (", and at most linearly with pixels (fixed costs per example weigh most at small "
           "images)." if per_pixel[-1] <= per_pixel[0] * 1.25 else
           ", and faster than linearly with pixels.")
    )  # fmt: skip


RUN_KEYS = ("date", "command", "machine", "torch", "lightning", "threads", "repeats", "pairs",
            "runtime_s", "load_average")  # fmt: skip


def merged(
    previous: dict[str, Any], figures: dict[str, Any], run: dict[str, Any]
) -> dict[str, Any]:
    """``figures`` of this run's sections and ``previous``'s figures for the others, with every
    run's date, command and load (``runs``: one entry per run, naming its sections)."""
    runs = previous.get("runs")
    if runs is None and previous:  # written before runs were kept apart: one run, every section
        runs = [{"sections": [s for s in SECTIONS if s in previous]}
                | {key: previous[key] for key in RUN_KEYS if key in previous}]  # fmt: skip
    kept = []
    for old in runs or []:
        sections = [s for s in old["sections"] if s not in run["sections"]]
        if sections:
            kept.append({**old, "sections": sections})
    others = {s: previous[s] for old in kept for s in old["sections"]}
    return {**others, **figures, "runs": [*kept, run]}


def median_rate(row: dict[str, Any], key: str) -> float | None:
    """A rate of the overhead section; a list (older files) gives its median."""
    rate = row.get(key)
    return statistics.median(rate) if isinstance(rate, list) else rate


def reproducible(argv: list[str]) -> list[str]:
    """The command line less ``--note`` (the report prints it on its own) and ``--out`` (the
    file the figures are in): what measured them."""
    kept, skip = [], False
    for arg in argv:
        if skip or arg.startswith(("--note=", "--out=")):
            skip = False
        elif arg in ("--note", "--out"):
            skip = True
        else:
            kept.append(arg)
    return kept


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument(
        "--pairs", type=int, default=None, help="overhead: pairs (default 9; --quick 2)"
    )
    parser.add_argument(
        "--warmup-pairs", type=int, default=None, help="overhead: not kept (default 1; --quick 0)"
    )
    parser.add_argument("--repeats", type=int, default=5, help="data and start-up sections")
    parser.add_argument("--batches", type=int, default=12, help="training batches per epoch")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument(
        "--threads", type=int, default=None, help="torch threads (default: torch's)"
    )
    parser.add_argument("--note", default="", help="a sentence on the run, for the report")
    parser.add_argument("--compile", action="store_true", help="model.compile=true")
    parser.add_argument("--scaling-sizes", nargs="+", default=["1000", "4000", "16000"])
    parser.add_argument("--scaling-images", nargs="+", default=["32", "64", "128"])
    parser.add_argument("--scaling-repeats", type=int, default=3)
    parser.add_argument(
        "--quick",
        action="store_true",
        help="tiny data, few repeats, the default experiment only: checks the script only",
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "outputs" / "benchmark" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: the Markdown from --out"
    )
    args = parser.parse_args()
    if args.report_only:
        rewrite_report(args.out)
        return
    args.base = (
        ["trainer=gpu", "data.num_workers=4", "data.batch_size=128", "data.source.num_train=4000"]
        if args.device == "cuda"
        else []
    )
    if args.compile:
        args.base.append("model.compile=true")
    if args.quick:
        args.base += QUICK_DATA
        args.repeats, args.batches, args.scaling_repeats = 1, 3, 1
        args.scaling_sizes, args.scaling_images = ["128", "256"], ["32", "64"]
        del EXPERIMENTS["large (128 px, transformer text)"]  # the default one checks the script
    if args.pairs is None:
        args.pairs = 2 if args.quick else 9
    if args.warmup_pairs is None:
        args.warmup_pairs = 0 if args.quick else 1
    if args.pairs < 1:
        parser.error("--pairs: at least 1")
    if args.threads:
        torch.set_num_threads(args.threads)
    previous = json.loads(args.out.read_text()) if args.out.exists() else {}
    _quiet()
    began, load = time.perf_counter(), os.getloadavg()[0]
    figures: dict[str, Any] = {}
    section_s: dict[str, float] = {}
    for section in (s for s in SECTIONS if s in args.sections):
        clock = time.perf_counter()
        default = {**previous.get("overhead", {}), **figures.get("overhead", {})}.get("default")
        if section == "overhead":
            figures["overhead"] = overhead(args)
        elif section == "data":
            rate = median_rate(default or {}, "hand_written_examples_per_s")
            figures["data"] = data_supply(args, rate)
        elif section == "startup":
            figures["startup"] = startup(args)
        elif section == "scaling":
            figures["scaling"] = scaling(args)
        else:
            rate = median_rate(default or {}, "framework_examples_per_s")
            figures["utilisation"] = utilisation(args, rate)
        section_s[section] = round(time.perf_counter() - clock, 1)
    run = {
        "sections": [s for s in SECTIONS if s in args.sections],
        "date": str(date.today()),
        "command": " ".join(["python scripts/benchmark.py", *reproducible(sys.argv[1:])]),
        "machine": (
            torch.cuda.get_device_name()
            if args.device == "cuda"
            else f"{_cpu_model()}, {os.cpu_count()} cores"
        ),
        "cores": os.cpu_count(),
        "torch": torch.__version__,
        "lightning": L.__version__,
        "threads": torch.get_num_threads(),
        "repeats": args.repeats,
        "pairs": args.pairs,
        "warmup_pairs": args.warmup_pairs,
        "runtime_s": round(time.perf_counter() - began, 1),
        "section_s": section_s,
        "note": args.note,
        "load_average": {"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
    }
    figures = merged(previous, figures, run)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    rewrite_report(args.out)
    print_summary(figures)
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def print_summary(figures: dict[str, Any]) -> None:
    table = Table(title="benchmark", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, row in figures.get("overhead", {}).items():
        if "median_ratio" in row:
            ci = row["ci95"]
            table.add_row(
                f"epoch time ratio, framework / hand-written, {name}",
                f"{row['median_ratio']:.3f} ({ci['lower']:.3f}-{ci['upper']:.3f})",
            )
            table.add_row(f"overhead, {name}", row["sentence"])
    if "data" in figures:
        table.add_row("data wait share", f"{figures['data']['wait_share']:.1%}")
    for name, row in figures.get("startup", {}).items():
        table.add_row(name, f"{row['median_s']:.2f} s")
    if figures.get("utilisation", {}).get("mfu") is not None:
        table.add_row("model FLOP utilisation", f"{figures['utilisation']['mfu']:.1%}")
    console.print(table)


if __name__ == "__main__":
    main()
