"""``rolefusion-predict``: the classes a trained model gives new examples, with probabilities.

Reads the checkpoint safely (``weights_only``; other files are refused unread), cleans and
encodes the inputs exactly as the run's data were (same text steps, image policy, tokenizer and
normalization), and writes a table, JSON lines, or a CSV (for binary tasks the Hateful Memes
submission format ``id, proba, label``). Beside the classes it shows how much each modality
accounts for (Shapley shares, as ``rolefusion-eval`` computes them), and it uses the temperature
``rolefusion-eval calibrate=true`` stored beside the checkpoint, when there is one.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Literal, get_args

import torch
from omegaconf import DictConfig
from rich.console import Console
from rich.table import Table

from rolefusion.choices import Task
from rolefusion.data.batch import Batch
from rolefusion.data.cleaning import Example
from rolefusion.data.files import FileAccess
from rolefusion.data.manifest import Record, read_manifest
from rolefusion.models.attribution import attribute, attribution_enabled, shares
from rolefusion.models.calibration import read_calibration
from rolefusion.runs.restore import RestoredRun, restore

OutputFormat = Literal["table", "jsonl", "csv"]


def probabilities(task: Task, logits: torch.Tensor) -> torch.Tensor:
    """Class probabilities ``[B, C]`` as the task defines them (softmax; sigmoid per class)."""
    return logits.float().sigmoid() if task == "multilabel" else logits.float().softmax(-1)


def records_from(cfg: DictConfig, run: RestoredRun) -> list[Record]:
    """The examples to predict: one from ``image``/``text``/``audio``, or a manifest's lines."""
    modalities = run.datamodule.modalities
    if cfg.input is not None:
        return read_manifest(cfg.input, run.datamodule.columns, modalities, labels_required=False)
    given = {m: cfg.get(m) for m in modalities}
    missing = [m for m, value in given.items() if value is None]
    if missing:
        raise ValueError(
            f"this model reads {', '.join(modalities)}: give {', '.join(missing)} "
            f"(e.g. {missing[0]}=...), or input=<manifest>"
        )
    files = {m: Path(given[m]) for m in ("image", "audio") if m in given}
    return [Record(id="input", label=None, text=given.get("text"), **files)]


def read_where_told(run: RestoredRun, cfg: DictConfig) -> None:
    """Prediction reads the files its user names, not the training set's: files on the command
    line from anywhere, an ``input`` manifest's from its own folder; the size bound stays."""
    cleaner = run.datamodule.cleaner
    roots = [Path(cfg.input).parent] if cfg.input is not None else []
    cleaner.files = FileAccess.under(roots, cleaner.files.max_bytes)


def batches(run: RestoredRun, examples: list[Example], size: int) -> Iterator[tuple[list, Batch]]:
    """The examples, cleaned as the run's, through the run's own transforms and collator."""
    dataset = run.datamodule.dataset_of(examples)
    collate = run.datamodule.collator()
    for start in range(0, len(examples), size):
        chunk = range(start, min(start + size, len(examples)))
        yield [examples[i].record.id for i in chunk], collate([dataset[i] for i in chunk])


@torch.no_grad()
def predict(
    run: RestoredRun,
    records: Sequence[Record],
    batch_size: int = 64,
    attribution: bool = False,
    temperature: float = 1.0,
) -> list[dict]:
    """One result per record: ``id`` and ``probabilities`` by class name; with ``attribution``,
    also each modality's Shapley value (``shapley``) and share (``shares``), of the model's own
    log-probabilities as ``rolefusion-eval`` computes them (a temperature rescales only the
    probabilities shown)."""
    examples = run.datamodule.cleaner.clean(records, _raise)
    hparams, net = run.model.hparams, run.model.net
    classes, modalities = list(hparams.class_names), list(net.encoders)
    results = []
    for ids, batch in batches(run, examples, batch_size):
        if attribution:
            logits, phi = attribute(net, batch, hparams.task, hparams.threshold)
        else:
            logits, phi = run.model(batch), None
        rows = probabilities(hparams.task, logits.float() / temperature)
        for position, (identifier, row) in enumerate(zip(ids, rows, strict=True)):
            result = {
                "id": identifier,
                "probabilities": dict(zip(classes, row.tolist(), strict=True)),
            }
            if phi is not None:
                values, parts = phi[position], shares(phi[position : position + 1])[0]
                result["shapley"] = dict(zip(modalities, values.tolist(), strict=True))
                result["shares"] = dict(zip(modalities, parts.tolist(), strict=True))
            results.append(result)
    return results


def _raise(error: Exception) -> None:
    raise error


def _top(result: dict, k: int) -> list[tuple[str, float]]:
    return sorted(result["probabilities"].items(), key=lambda item: -item[1])[:k]


def _shares_text(result: dict) -> str:
    return ", ".join(f"{m} {share:.2f}" for m, share in result["shares"].items())


def write(results: list[dict], cfg: DictConfig, task: str, threshold: float, note: str) -> None:
    """The results in ``cfg.format``; ``note`` says how the probabilities were made (the
    temperature they were calibrated with, if any)."""
    attributed = bool(results) and "shares" in results[0]
    if cfg.format == "table":
        table = Table(title=f"predictions ({task}{note})", title_justify="left")
        table.add_column("id")
        table.add_column(f"top {cfg.top_k}" if task == "multiclass" else "probabilities")
        if attributed:
            table.add_column("modality shares")
        for result in results:
            shown = _top(
                result, cfg.top_k if task == "multiclass" else len(result["probabilities"])
            )
            cells = [str(result["id"]), ", ".join(f"{c} {p:.3f}" for c, p in shown)]
            table.add_row(*cells, *([_shares_text(result)] if attributed else []))
        Console().print(table)
        return
    handle = io.StringIO()
    if cfg.format == "jsonl":
        for result in results:
            top = [{"label": c, "probability": p} for c, p in _top(result, cfg.top_k)]
            handle.write(json.dumps({**result, "top": top}) + "\n")
    else:
        writer = csv.writer(handle)
        # Hateful Memes' submission (binary): id, proba, label; shares only when asked for.
        submission = task == "binary" and cfg.attribution is not True
        modalities = list(results[0]["shares"]) if attributed and not submission else []
        shares_header = [f"share_{m}" for m in modalities]
        if task == "binary":
            positive = list(results[0]["probabilities"])[-1] if results else "1"
            writer.writerow(["id", "proba", "label", *shares_header])
        else:
            writer.writerow(["id", "label", "probability", *shares_header])
        for result in results:
            share_cells = [f"{result['shares'][m]:.6f}" for m in modalities]
            if task == "binary":
                p = result["probabilities"][positive]
                writer.writerow([result["id"], f"{p:.6f}", int(p >= threshold), *share_cells])
            else:
                label, p = _top(result, 1)[0]
                writer.writerow([result["id"], label, f"{p:.6f}", *share_cells])
    if cfg.output:
        Path(cfg.output).write_text(handle.getvalue())
    else:
        sys.stdout.write(handle.getvalue())


def run(cfg: DictConfig) -> None:
    if cfg.format not in get_args(OutputFormat):  # before the checkpoint is read
        raise ValueError(f"format: expected one of {get_args(OutputFormat)}, got {cfg.format!r}")
    run = restore(cfg.ckpt_path)
    attribution = attribution_enabled(cfg.attribution, tuple(run.model.net.encoders),
                                      "attribution")  # fmt: skip
    calibration = read_calibration(cfg.ckpt_path)
    temperature = calibration.temperature if calibration else 1.0
    note = f", calibrated: temperature {temperature:.3f}" if calibration else ""
    read_where_told(run, cfg)
    results = predict(run, records_from(cfg, run), cfg.batch_size, attribution, temperature)
    write(results, cfg, run.model.hparams.task, run.model.hparams.threshold, note)
