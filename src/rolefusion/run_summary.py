"""What a finished run leaves behind for people (a table) and for tools (``metrics.json``)."""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

SHOWN_METRICS: tuple[str, ...] = ("acc", "precision", "recall", "f1", "loss")


def write_json_atomically(path: Path, payload: Mapping[str, Any]) -> None:
    """Write via a temporary file and rename, so a reader never sees half a file."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, path)


def print_metrics_table(metrics: Mapping[str, float], split: str = "test") -> None:
    """Print ``{split}/acc``, precision, recall, F1 and loss as one table."""
    table = Table(title=f"{split} metrics", title_justify="left")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for name in SHOWN_METRICS:
        key = f"{split}/{name}"
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    Console().print(table)
