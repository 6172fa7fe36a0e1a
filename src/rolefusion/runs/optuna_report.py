"""The Optuna part of ``rolefusion-report``: when a sweep directory holds a study
(``optuna.db``, as ``hparams_search=optuna`` leaves it), a table of its trials, each number
linking to the trial's run directory, and Optuna's own plots.

Optuna draws with matplotlib (``optuna.visualization.matplotlib``); a plot that the installed
Optuna cannot draw (too few trials, or a version that does not fit the installed matplotlib or
scikit-learn) is replaced by a sentence saying why, never by a failed report.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import yaml

from rolefusion.runs.optuna_trial import TRIAL_ID_VARIABLE

STUDY_FILE = "optuna.db"


def optuna_section(sweep_dir: Path, job_dirs: Sequence[Path], out: Path) -> list[str]:
    """The Markdown lines of the report's Optuna section (plots written into ``out``); no line
    when ``sweep_dir`` holds no study."""
    path = sweep_dir / STUDY_FILE
    if not path.is_file():
        return []
    try:
        import optuna
    except ImportError:
        return ["## Optuna", "", f"`{path}` holds an Optuna study, but Optuna is not installed "
                "here: `pip install 'rolefusion[optuna]'` to see its trials.", ""]  # fmt: skip
    storage = f"sqlite:///{path}"
    directories = _directories_by_trial_id(job_dirs)
    lines = []
    for summary in optuna.get_all_study_summaries(storage):
        study = optuna.load_study(study_name=summary.study_name, storage=storage)
        lines += _study_lines(study, directories, out)
    return lines


def _directories_by_trial_id(job_dirs: Sequence[Path]) -> dict[int, Path]:
    """Each job directory by the id of the trial it ran, which the sweeper set in its
    environment and Hydra recorded in ``.hydra/hydra.yaml``."""
    found = {}
    for directory in job_dirs:
        hydra_file = directory / ".hydra" / "hydra.yaml"
        if not hydra_file.is_file():
            continue
        job = (yaml.safe_load(hydra_file.read_text()) or {}).get("hydra", {}).get("job", {})
        trial_id = (job.get("env_set") or {}).get(TRIAL_ID_VARIABLE)
        if trial_id is not None:
            found[int(trial_id)] = directory
    return found


def _study_lines(study: Any, directories: dict[int, Path], out: Path) -> list[str]:
    trials = study.get_trials(deepcopy=False)
    states = [trial.state.name.lower() for trial in trials]
    counts = ", ".join(f"{states.count(s)} {s}" for s in sorted(set(states)))
    lines = [
        f"## Optuna study `{study.study_name}`",
        "",
        f"{len(trials)} trials ({counts}), {study.direction.name.lower()} the value. A trial's "
        "number links to its run directory; `epochs`: the epochs it reported (a pruned trial "
        "stopped after them, and its value is its last one).",
        "",
        *_trial_table(trials, directories, out),
        "",
    ]
    stem = re.sub(r"[^\w.-]+", "_", study.study_name)
    for title, name, draw in _plots(study):
        lines += [_drawn(draw, out / f"{stem}_{name}.png", title), ""]
    return lines


def _trial_table(trials: Sequence[Any], directories: dict[int, Path], out: Path) -> list[str]:
    names = sorted({name for trial in trials for name in trial.params})
    header = ["trial", "state", "value", "epochs", *names]
    rows = []
    for trial in trials:
        directory = directories.get(trial._trial_id)
        number = str(trial.number)
        if directory is not None:
            number = f"[{number}]({quote(Path(os.path.relpath(directory, out)).as_posix())}/)"
        epochs = "-" if trial.last_step is None else str(trial.last_step + 1)
        params = [_short(trial.params[n]) if n in trial.params else "-" for n in names]
        rows.append([number, trial.state.name.lower(), _short(trial.value), epochs, *params])
    return [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
        *("| " + " | ".join(row) + " |" for row in rows),
    ]


def _short(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _plots(study: Any) -> list[tuple[str, str, Callable[[], Any]]]:
    """(title, file name, drawing) of each Optuna plot the report holds."""
    from optuna.visualization import matplotlib as optuna_plots

    return [
        ("optimisation history", "history", lambda: optuna_plots.plot_optimization_history(study)),
        ("parameter importances (fANOVA)", "importances",
         lambda: optuna_plots.plot_param_importances(study)),
        ("value after each epoch, pruned trials included", "intermediate_values",
         lambda: _with_markers(optuna_plots.plot_intermediate_values(study))),
    ]  # fmt: skip


def _with_markers(axes: Any) -> Any:
    """Dots on every line: a trial pruned after its first epoch is one point, which a line
    alone does not show."""
    for line in axes.get_lines():
        line.set_marker("o")
        line.set_markersize(3)
    return axes


def _drawn(draw: Callable[[], Any], path: Path, title: str) -> str:
    """Draw one Optuna plot into ``path``: its Markdown image, or why it could not be drawn."""
    try:
        # Optuna sets its own style: in a context, so the rest of the report keeps the default.
        with warnings.catch_warnings(), plt.style.context("default"):
            warnings.simplefilter("ignore")  # the matplotlib plots are "experimental" in Optuna 2
            axes = draw()
    # Optuna's plotting raises what its dependencies raise: ValueError for too few trials, and
    # TypeError, AttributeError, ... where its version does not fit matplotlib or scikit-learn.
    except Exception as error:
        return f"The {title} could not be drawn with {_versions()}: {type(error).__name__}: {error}"
    figure = axes.figure if hasattr(axes, "figure") else axes.flat[0].figure
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return f"![{title}]({path.name})"


def _versions() -> str:
    """``Optuna 2.10.1 (matplotlib 3.11.2, scikit-learn 1.9.1)``: what a plot was drawn with."""
    from importlib.metadata import PackageNotFoundError, version

    def installed(package: str) -> str | None:
        try:
            return f"{package} {version(package)}"
        except PackageNotFoundError:
            return None

    found = [v for v in map(installed, ("matplotlib", "scikit-learn")) if v]
    return f"{installed('optuna')} ({', '.join(found)})"
