"""What a finished run leaves behind for people (a table) and for tools (``metrics.json``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN_FIRST: tuple[str, ...] = ("acc", "precision", "recall", "f1", "f1_micro", "auroc", "loss")


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def scalar_metrics(callback_metrics: Mapping[str, Any]) -> dict[str, float]:
    """Every scalar metric as a float (the test confusion matrix travels there too)."""
    return {name: float(v) for name, v in callback_metrics.items() if v.numel() == 1}


def print_metrics_table(metrics: Mapping[str, float], split: str = "test") -> None:
    """Print every ``{split}/...`` metric as one table, the usual ones first."""
    names = sorted(
        (key for key in metrics if key.startswith(f"{split}/")),
        key=lambda key: (SHOWN_FIRST.index(key.split("/", 1)[1])
                         if key.split("/", 1)[1] in SHOWN_FIRST else len(SHOWN_FIRST), key),
    )  # fmt: skip
    table = Table(title=f"{split} metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in names:
        table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)


def log_test_details(loggers: Sequence[Any], details: Mapping[str, Any],
                     class_names: Sequence[str]) -> None:  # fmt: skip
    """Per-class scores and the confusion matrix as W&B tables and plots (other loggers get
    them in ``metrics.json``)."""
    for logger in loggers:
        if type(logger).__name__ != "WandbLogger":
            continue
        import wandb

        per_class = wandb.Table(
            columns=["class", "precision", "recall", "f1", "support"],
            data=[[name, *scores.values()] for name, scores in details["per_class"].items()],
        )
        matrix = details["confusion_matrix"]
        logger.experiment.log(
            {
                "test/per_class": per_class,
                "test/per_class_f1": wandb.plot.bar(per_class, "class", "f1",
                                                    title="test F1 per class"),
                "test/confusion_matrix": _confusion_table(wandb, matrix, class_names),
            }
        )  # fmt: skip


def _confusion_table(wandb: Any, matrix: list, class_names: Sequence[str]) -> Any:
    """Rows (true, predicted, count); for multilabel, (class, truth, decision, count)."""
    if matrix and isinstance(matrix[0][0], list):
        rows = [[name, t, p, matrix[c][t][p]] for c, name in enumerate(class_names)
                for t in (0, 1) for p in (0, 1)]  # fmt: skip
        return wandb.Table(columns=["class", "true", "predicted", "count"], data=rows)
    rows = [[class_names[t], class_names[p], matrix[t][p]] for t in range(len(matrix))
            for p in range(len(matrix))]  # fmt: skip
    return wandb.Table(columns=["true", "predicted", "count"], data=rows)
