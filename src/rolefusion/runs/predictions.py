"""``predictions.csv``: what a run (or ``rolefusion-eval``) predicted for each example it scored.

One row per example, in the split's order: ``id`` (the data set's example id), ``label`` (the true
class), ``predicted``, then one probability column per class, ``p_<class name>``, in label-index
order; when the test attributed (:mod:`rolefusion.models.attribution`), one Shapley value per
modality the model reads, ``shap_<modality>``. ``rolefusion-report`` reads these files to compare
configurations on the same examples.

``predicted`` is the decision the run's metrics scored: the most probable class (multiclass), the
positive class when its probability exceeds the threshold (binary; the same as the more probable
one at 0.5). Multilabel rows hold sets: ``label`` and ``predicted`` are the class names joined
by ``|`` (every class whose probability exceeds the threshold, as the metrics decide; empty when
none), and the probability columns are each class's own sigmoid, so they need not sum to 1.

Torch-free at import: ``rolefusion-report`` reads these files without loading torch.
"""

from __future__ import annotations

import csv
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from rolefusion.choices import Task

if TYPE_CHECKING:
    import torch

    from rolefusion.data.cleaning import Example

PREDICTIONS_FILE = "predictions.csv"
PROBABILITY_PREFIX = "p_"
SHAPLEY_PREFIX = "shap_"
LABEL_SEPARATOR = "|"
"""Joins the classes of a multilabel ``label`` or ``predicted`` cell."""


def collected_predictions(callback_metrics: Mapping[str, torch.Tensor]) -> dict[str, np.ndarray]:
    """What the last test epoch collected (``index``, ``target``, ``probabilities``), or ``{}``."""
    from rolefusion.models.module import PREDICTIONS  # here: importing the module loads torch

    return {
        key.removeprefix(PREDICTIONS): value.numpy()
        for key, value in callback_metrics.items()
        if key.startswith(PREDICTIONS)
    }


def decisions(probabilities: np.ndarray, task: Task, threshold: float = 0.5) -> np.ndarray:
    """``[N]`` predicted class indices, or ``[N, C]`` booleans for multilabel, as the metrics
    decide them from ``[N, C]`` probabilities."""
    if task == "multilabel":
        return probabilities > threshold
    if task == "binary":
        return (probabilities[:, 1] > threshold).astype(np.int64)
    return probabilities.argmax(1)


def prediction_rows(
    ids: Sequence[str],
    target: np.ndarray,
    probabilities: np.ndarray,
    class_names: Sequence[str],
    task: Task,
    threshold: float = 0.5,
    shapley: np.ndarray | None = None,
) -> list[list[str]]:
    """The rows of ``predictions.csv`` under its header (:func:`header`); ``shapley [N, M]``
    adds the attribution columns."""
    names = np.asarray(class_names, dtype=object)
    predicted = decisions(probabilities, task, threshold)
    if task == "multilabel":
        labels = [LABEL_SEPARATOR.join(names[row > 0.5]) for row in target]
        chosen = [LABEL_SEPARATOR.join(names[row]) for row in predicted]
    else:
        labels = [names[t] if t >= 0 else "" for t in target.astype(np.int64)]
        chosen = list(names[predicted])
    values = probabilities if shapley is None else np.concatenate([probabilities, shapley], 1)
    return [
        [identifier, label, choice, *(f"{v:.7g}" for v in row)]
        for identifier, label, choice, row in zip(ids, labels, chosen, values, strict=True)
    ]


def header(class_names: Sequence[str], modalities: Sequence[str] = ()) -> list[str]:
    """The columns; ``modalities`` are those attributed (none: no attribution columns)."""
    return [
        "id",
        "label",
        "predicted",
        *(PROBABILITY_PREFIX + name for name in class_names),
        *(SHAPLEY_PREFIX + modality for modality in modalities),
    ]


def write_predictions(
    path: Path,
    callback_metrics: Mapping[str, torch.Tensor],
    examples: Sequence[Example],
    hparams: Mapping[str, Any],
    modalities: Sequence[str] = (),
) -> int:
    """Write what the last test epoch predicted to ``path``, via a temporary file and a rename
    (as :func:`~rolefusion.runs.artifacts.write_json_atomically`).

    Args:
        callback_metrics: the trainer's, where the module left the epoch's rows.
        examples: the split that was scored, whose ids name the rows.
        hparams: the module's: ``class_names``, ``task`` and ``threshold`` decide ``predicted``.
        modalities: the model's, in its order: names the Shapley columns when the epoch
            attributed.

    Returns the number of rows; 0, writing nothing, when the epoch collected no predictions.
    """
    collected = collected_predictions(callback_metrics)
    if not collected:
        return 0
    ids = [examples[i].record.id for i in collected["index"]]
    rows = prediction_rows(
        ids,
        collected["target"],
        collected["probabilities"],
        hparams["class_names"],
        hparams["task"],
        hparams["threshold"],
        collected.get("shapley"),
    )
    attributed = modalities if "shapley" in collected else ()
    temporary = path.with_suffix(path.suffix + ".tmp")
    with temporary.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header(hparams["class_names"], attributed))
        writer.writerows(rows)
    os.replace(temporary, path)
    return len(rows)


def read_predictions(path: Path) -> pd.DataFrame:
    """A ``predictions.csv`` as a data frame: ids, labels and decisions as strings (an empty
    multilabel set stays ``""``), probabilities as floats."""
    frame = pd.read_csv(
        path, dtype={"id": str, "label": str, "predicted": str}, keep_default_na=False
    )
    missing = {"id", "label", "predicted"} - set(frame.columns)
    if missing or not class_names_of(frame):
        raise ValueError(f"{path}: not a predictions.csv (columns {list(frame.columns)})")
    return frame


def class_names_of(frame: pd.DataFrame) -> list[str]:
    """The classes of a ``predictions.csv``, in label-index order (its ``p_`` columns)."""
    return [
        c.removeprefix(PROBABILITY_PREFIX)
        for c in frame.columns
        if c.startswith(PROBABILITY_PREFIX)
    ]


def decoded(frame: pd.DataFrame, multilabel: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``label`` and ``predicted`` of a ``predictions.csv`` as class indices ``[N]``, or as
    booleans ``[N, C]`` for multilabel sets (what :mod:`rolefusion.runs.statistics` takes)."""
    classes = class_names_of(frame)
    if multilabel:
        return tuple(
            np.array(
                [
                    [name in cell.split(LABEL_SEPARATOR) for name in classes]
                    for cell in frame[column]
                ],
                dtype=bool,
            ).reshape(len(frame), len(classes))
            for column in ("label", "predicted")
        )
    position = {name: i for i, name in enumerate(classes)}
    return tuple(
        frame[column].map(position).to_numpy(dtype=np.int64) for column in ("label", "predicted")
    )


def aligned(frames: Mapping[Path, pd.DataFrame]) -> dict[Path, pd.DataFrame]:
    """Every frame's rows in the first frame's id order, so that row ``i`` is the same example
    in each; refuses files that do not hold the same examples (ids, true labels) and classes."""
    (first_path, first), *others = frames.items()
    result = {first_path: first.reset_index(drop=True)}
    for path, frame in [(first_path, first), *others]:
        duplicated = frame["id"][frame["id"].duplicated()]
        if len(duplicated):
            raise ValueError(f"{path}: example ids occur twice, e.g. {duplicated.iloc[0]!r}")
    for path, frame in others:
        if class_names_of(frame) != class_names_of(first):
            raise ValueError(
                f"{path} and {first_path} have different classes: "
                f"{class_names_of(frame)} vs {class_names_of(first)}; not the same task"
            )
        if set(frame["id"]) != set(first["id"]):
            only = sorted(set(frame["id"]) ^ set(first["id"]))
            raise ValueError(
                f"{path} and {first_path} hold different examples ({len(only)} ids in one only, "
                f"e.g. {only[:3]}): paired comparison needs the same test split"
            )
        frame = frame.set_index("id").loc[first["id"]].reset_index()
        if not frame["label"].equals(result[first_path]["label"]):
            raise ValueError(f"{path} and {first_path} give the same ids different true labels")
        result[path] = frame
    return result
