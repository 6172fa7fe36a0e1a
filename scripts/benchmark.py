"""Performance of the training loop: framework overhead, data supply, start-up, scaling, FLOPs.

One command, five sections (``--sections`` picks some), every figure a median over
``--repeats`` interleaved repeats, ratios taken side by side in this one process:

- **overhead**: examples/s of ``rolefusion-train``'s loop (Lightning ``Trainer.fit`` with the
  run's callbacks, logger and progress bar, the module's metrics) against a minimal hand-written
  PyTorch loop (forward, loss, backward, optimizer step) on the identical model, batches (collated
  into memory once) and optimizer, alternating framework / hand-written each repeat; timed from
  the end of the first step to the end of the last, so both leave out their start-up. For the
  default experiment and a larger one (128 px images, transformer text encoder).
- **data**: the share of training step time spent waiting for the next batch in a real fit,
  and the loader's throughput against what the model consumes (the hand-written loop's rate).
- **startup**: wall time of ``rolefusion-train --help``, of ``import rolefusion.train``, of
  ``import torch, lightning`` (what ``--help`` no longer loads), and of a whole
  ``rolefusion-train`` run cut to one training step (command to exit).
- **scaling**: time per training epoch against data set size (1k, 4k, 16k examples at 32 px) and
  image size (32, 64, 128 px at 2k examples); linear cost means constant time per example
  (per pixel, for image size).
- **utilisation**: training FLOPs per example (torch's FLOP counter, forward and backward) times
  the framework's examples/s, over this device's measured matmul peak (bf16 on a GPU, fp32 on a
  CPU): the model FLOP utilisation.

Writes ``--out`` (JSON: every repeat) and the Markdown beside it, and prints the tables.

    .venv/bin/python scripts/benchmark.py        # docs/performance.{json,md}; ~25 min, 2 cores
    .venv/bin/python scripts/benchmark.py --sections overhead --repeats 3
    .venv/bin/python scripts/benchmark.py --device cuda --quick --out outputs/benchmark/gpu.json
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
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import lightning as L
import torch
from hydra.utils import instantiate
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
from rolefusion.data.batch import Batch
from rolefusion.data.datamodule import RoleFusionDataModule
from rolefusion.runs.build import build_model, instantiate_all, prepared_datamodule

ROOT = Path(__file__).resolve().parents[1]
SECTIONS = ("overhead", "data", "startup", "scaling", "utilisation")
TARGET_RATIO = 0.95
TARGET_WAIT_SHARE = 0.10
EXPERIMENTS = {
    "default": [],
    "large (128 px, transformer text)": [
        "data.source.image_size=128", "model/text_encoder=transformer",
    ],
}  # fmt: skip
console = Console()


class TrainingClock(L.Callback):
    """Wall time from the end of the first training step to the end of the last (synchronised
    with the GPU), and the examples of the steps in between."""

    def __init__(self) -> None:
        self.start = self.end = 0.0
        self.examples = 0

    def on_train_batch_end(
        self, trainer: L.Trainer, module: L.LightningModule, outputs: Any, batch: Any, index: int
    ) -> None:
        synchronize(module.device)
        now = time.perf_counter()
        if index == 0:
            self.start = now
        else:
            self.examples += len(batch)
        self.end = now

    @property
    def examples_per_s(self) -> float:
        return self.examples / (self.end - self.start)


class InMemory:
    """Batches already collated, served as one loader (Lightning reads a bare list as a list
    of loaders)."""

    def __init__(self, batches: list[Batch]) -> None:
        self.batches = batches

    def __iter__(self):
        return iter(self.batches)

    def __len__(self) -> int:
        return len(self.batches)


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def framework_pass(cfg: DictConfig, data: RoleFusionDataModule, batches: list[Batch],
                   val: list[Batch], work: Path) -> float:  # fmt: skip
    """Examples/s of ``Trainer.fit`` as ``rolefusion-train`` sets it up, for one epoch."""
    model = build_model(cfg, data.spec)
    clock = TrainingClock()
    trainer: L.Trainer = instantiate(
        cfg.trainer, callbacks=[*instantiate_all(cfg.callbacks), clock],
        logger=instantiate_all(cfg.logger) or False, max_epochs=1, num_sanity_val_steps=0,
        enable_model_summary=False, default_root_dir=str(work),
    )  # fmt: skip
    trainer.fit(model, train_dataloaders=InMemory(batches), val_dataloaders=InMemory(val))
    del trainer, model
    _release()
    return clock.examples_per_s


def hand_written_pass(cfg: DictConfig, data: RoleFusionDataModule, batches: list[Batch]) -> float:
    """Examples/s of the loop one would write by hand, on the same model, batches, optimizer
    and precision."""
    device = torch.device("cuda" if cfg.trainer.accelerator in ("gpu", "cuda") else "cpu")
    model = build_model(cfg, data.spec).to(device).train()
    if cfg.model.compile:
        model.net.compile(mode=None if cfg.model.compile is True else cfg.model.compile)
    optimizer = model.optimizer_factory(params=model.parameters())
    bf16 = "bf16" in str(cfg.trainer.get("precision"))
    start, examples = 0.0, 0
    for index, batch in enumerate(batches):
        batch = batch.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
            loss = model.loss(model.net(batch), batch.label)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if index == 0:
            synchronize(device)
            start = time.perf_counter()
        else:
            examples += len(batch)
    synchronize(device)
    rate = examples / (time.perf_counter() - start)
    del model, optimizer
    _release()
    return rate


def experiment(
    args: argparse.Namespace, *overrides: str
) -> tuple[DictConfig, RoleFusionDataModule]:
    cfg = compose_default(args.data_dir, args.work, *args.base, *overrides)
    if cfg.seed is not None:
        L.seed_everything(cfg.seed, workers=True, verbose=False)
    return cfg, prepared_datamodule(cfg)


def overhead(args: argparse.Namespace) -> dict[str, Any]:
    results = {}
    for name, overrides in EXPERIMENTS.items():
        cfg, data = experiment(args, *overrides)
        batches = list(data.train_dataloader())[: args.batches]
        val = list(data.val_dataloader())[:1]
        framework, hand = [], []
        for repeat in range(args.repeats + 1):  # the first pair warms up and is not kept
            f = framework_pass(cfg, data, batches, val, args.work / "overhead")
            h = hand_written_pass(cfg, data, batches)
            if repeat:
                framework.append(f)
                hand.append(h)
            console.print(f"overhead {name} {repeat}: framework {f:,.1f} ex/s, hand {h:,.1f} ex/s")
        results[name] = {
            "framework_examples_per_s": framework,
            "hand_written_examples_per_s": hand,
            "ratio": statistics.median(framework) / statistics.median(hand),
            "paired_ratios": [a / b for a, b in zip(framework, hand, strict=True)],
            "batches": len(batches),
            "batch_size": cfg.data.batch_size,
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


def markdown(figures: dict[str, Any]) -> str:
    lines = [
        "# Performance",
        "",
        f"Measured {figures['date']} with `{figures['command']}` on {figures['machine']} "
        f"(torch {figures['torch']}, Lightning {figures['lightning']}, {figures['threads']} torch "
        f"threads; load average {figures['load_average']['start']} at the start, "
        f"{figures['load_average']['end']} at the end). Medians of {figures['repeats']} "
        "interleaved repeats; ratios are taken between measurements made side by side in this "
        "one run.",
        "",
    ]
    if "overhead" in figures:
        lines += [
            "## Framework overhead",
            "",
            "Training examples/s of `rolefusion-train`'s loop (Lightning `Trainer.fit`, the run's "
            "callbacks, CSV logger, progress bar and metrics) and of a hand-written PyTorch loop "
            "on the same model, batches (collated in memory once) and optimizer, alternating "
            "(framework first in each pair; one warm-up pair not kept), from the end of the "
            "first step to the end of the last. Target: ratio >= "
            f"{TARGET_RATIO}. A ratio above 1 is noise around no overhead: the framework adds "
            "per-step work (metrics, logging, the NaN guard's check) and never less than the "
            "hand-written loop's.",
            "",
            "| experiment | framework ex/s | hand-written ex/s | ratio | paired ratios |",
            "|---|---:|---:|---:|---|",
        ]
        for name, row in figures["overhead"].items():
            lines.append(
                f"| {name} | {statistics.median(row['framework_examples_per_s']):,.1f} | "
                f"{statistics.median(row['hand_written_examples_per_s']):,.1f} | "
                f"**{row['ratio']:.3f}** | "
                + ", ".join(f"{r:.3f}" for r in row["paired_ratios"])
                + " |"
            )
        lines.append("")
    if "data" in figures:
        d = figures["data"]
        lines += [
            "## Data supply",
            "",
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
        lines += ["## Start-up", "", "| command | median wall time (s) |", "|---|---:|"]
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
            f"{u['training_flops_per_example'] / 1e6:,.1f} MFLOPs per training example (forward "
            f"and backward, torch's FLOP counter) at the framework's rate: "
            f"{u['achieved_flops_per_s'] / 1e9:,.2f} GFLOP/s, against a measured "
            f"{u['peak']['dtype']} matmul peak of {u['peak']['flops_per_s'] / 1e9:,.1f} GFLOP/s "
            f"({u['peak']['n']}x{u['peak']['n']}): **MFU {u['mfu']:.1%}**.",
            "",
        ]
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
    "`scripts/gpu_check.sh` runs the overhead, data and utilisation sections on a CUDA GPU in "
    "under 5 minutes (`COMPILE=1` for the compiled model) and writes `outputs/benchmark/gpu.md`. "
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sections", nargs="+", choices=SECTIONS, default=list(SECTIONS))
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batches", type=int, default=12, help="training batches per pass")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu")
    parser.add_argument("--compile", action="store_true", help="model.compile=true")
    parser.add_argument("--scaling-sizes", nargs="+", default=["1000", "4000", "16000"])
    parser.add_argument("--scaling-images", nargs="+", default=["32", "64", "128"])
    parser.add_argument("--scaling-repeats", type=int, default=3)
    parser.add_argument(
        "--quick", action="store_true", help="tiny data, few repeats: checks the script only"
    )
    parser.add_argument("--data-dir", type=Path, default=ROOT / "outputs" / "benchmark" / "data")
    parser.add_argument("--work", type=Path, default=ROOT / "outputs" / "benchmark")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.json")
    parser.add_argument(
        "--report-only", action="store_true", help="measure nothing: the Markdown from --out"
    )
    args = parser.parse_args()
    if args.report_only:
        args.out.with_suffix(".md").write_text(markdown(json.loads(args.out.read_text())) + "\n")
        return
    args.base = (
        ["trainer=gpu", "data.num_workers=4", "data.batch_size=128", "data.source.num_train=4000"]
        if args.device == "cuda"
        else []
    )
    if args.compile:
        args.base.append("model.compile=true")
    if args.quick:
        args.base += ["data.source.num_train=256", "data.source.num_val=64",
                      "data.source.num_test=64", "data.batch_size=32"]  # fmt: skip
        args.repeats, args.batches, args.scaling_repeats = 1, 3, 1
        args.scaling_sizes, args.scaling_images = ["128", "256"], ["32", "64"]
        EXPERIMENTS["large (128 px, transformer text)"][0] = "data.source.image_size=64"
    _quiet()
    began, load = time.perf_counter(), os.getloadavg()[0]
    figures: dict[str, Any] = {}
    if "overhead" in args.sections:
        figures["overhead"] = overhead(args)
    default_rates = figures.get("overhead", {}).get("default", {})
    if "data" in args.sections:
        hand = default_rates.get("hand_written_examples_per_s")
        figures["data"] = data_supply(args, statistics.median(hand) if hand else None)
    if "startup" in args.sections:
        figures["startup"] = startup(args)
    if "scaling" in args.sections:
        figures["scaling"] = scaling(args)
    if "utilisation" in args.sections:
        rate = default_rates.get("framework_examples_per_s")
        figures["utilisation"] = utilisation(args, statistics.median(rate) if rate else None)
    figures.update(
        date=str(date.today()),
        command=" ".join(["python scripts/benchmark.py", *sys.argv[1:]]),
        machine=(
            torch.cuda.get_device_name()
            if args.device == "cuda"
            else f"{_cpu_model()}, {os.cpu_count()} cores"
        ),
        torch=torch.__version__,
        lightning=L.__version__,
        threads=torch.get_num_threads(),
        repeats=args.repeats,
        runtime_s=round(time.perf_counter() - began, 1),
        load_average={"start": round(load, 2), "end": round(os.getloadavg()[0], 2)},
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(figures, indent=1) + "\n")
    report = markdown(figures)
    args.out.with_suffix(".md").write_text(report + "\n")
    print_summary(figures)
    console.print(f"wrote {args.out} and {args.out.with_suffix('.md')}")


def print_summary(figures: dict[str, Any]) -> None:
    table = Table(title="benchmark", title_justify="left")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for name, row in figures.get("overhead", {}).items():
        table.add_row(f"overhead ratio, {name}", f"{row['ratio']:.3f}")
        table.add_row(f"framework examples/s, {name}",
                      f"{statistics.median(row['framework_examples_per_s']):,.1f}")  # fmt: skip
    if "data" in figures:
        table.add_row("data wait share", f"{figures['data']['wait_share']:.1%}")
    for name, row in figures.get("startup", {}).items():
        table.add_row(name, f"{row['median_s']:.2f} s")
    if figures.get("utilisation", {}).get("mfu") is not None:
        table.add_row("model FLOP utilisation", f"{figures['utilisation']['mfu']:.1%}")
    console.print(table)


if __name__ == "__main__":
    main()
