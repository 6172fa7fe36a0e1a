"""Pruned Optuna trials: a job reports every epoch to its trial and stops when the study's pruner
says so; the study, the run directory and ``rolefusion-report`` all say it was pruned."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from rolefusion.commands.report import report
from rolefusion.commands.train import train
from rolefusion.config import register_configs
from rolefusion.runs import optuna_pruning, optuna_trial
from rolefusion.runs.directory import finished_metrics

from conftest import CONF_DIR, TINY_DATA

optuna = pytest.importorskip("optuna", reason="pip install 'rolefusion[optuna]'")

PRUNED = optuna.trial.TrialState.PRUNED


def search_config(*overrides: str) -> DictConfig:
    """``hparams_search=optuna`` with Hydra's own config, as a sweep composes it."""
    register_configs()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", ["hparams_search=optuna", *overrides], return_hydra_config=True)


@pytest.mark.parametrize(
    ("preset", "pruner"),
    [("median", "MedianPruner"), ("hyperband", "HyperbandPruner"), ("none", "NopPruner")],
)
def test_every_pruner_preset_builds_its_optuna_pruner(preset: str, pruner: str) -> None:
    built = instantiate(search_config(f"hydra/sweeper/pruner={preset}").hydra.sweeper.pruner)
    assert type(built) is getattr(optuna.pruners, pruner)


def test_a_misspelt_pruner_setting_is_refused_naming_the_key() -> None:
    with pytest.raises(Exception, match=r"hydra\.sweeper\.pruner\.n_warmup_step"):
        search_config("hydra.sweeper.pruner.n_warmup_step=1")


def test_pruning_without_a_storage_the_jobs_can_share_is_refused() -> None:
    from rolefusion.runs.optuna_sweep import PruningOptunaSweeperImpl

    with pytest.raises(ValueError, match=r"hydra\.sweeper\.storage"):
        PruningOptunaSweeperImpl(pruner=optuna.pruners.MedianPruner(), sampler=None,
                                 direction="maximize", storage=None, study_name="s", n_trials=1,
                                 n_jobs=1, max_failure_rate=0.0)  # fmt: skip


def test_a_storage_the_job_cannot_open_is_named(tmp_path: Path, monkeypatch) -> None:
    storage = f"sqlite:///{tmp_path}/no/such/folder/optuna.db"
    sweeper = OmegaConf.create({"storage": storage, "study_name": "s", "pruner": None})
    monkeypatch.setattr(
        optuna_trial.HydraConfig, "get", lambda: OmegaConf.create({"sweeper": sweeper})
    )
    monkeypatch.setenv(optuna_trial.TRIAL_ID_VARIABLE, "1")
    with pytest.raises(RuntimeError, match=r"hydra\.sweeper\.storage=.*cannot open study 's'"):
        optuna_trial.job_trial()


def test_a_pruned_run_stops_at_that_epoch_is_not_tested_and_says_so(
    compose_train, tmp_path: Path, monkeypatch
) -> None:
    # A study in memory whose pruner stops every trial at its first report: the job's side alone.
    study = optuna.create_study(direction="maximize",
                                pruner=optuna.pruners.ThresholdPruner(lower=2.0))  # fmt: skip
    trial = study.ask()
    monkeypatch.setattr(optuna_pruning, "job_trial", lambda: trial)
    monkeypatch.setenv(optuna_trial.TRIAL_ID_VARIABLE, str(trial._trial_id))
    cfg = compose_train("hparams_search=optuna", "trainer.max_epochs=3")
    train(cfg)

    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert (record["status"], record["stopped_epoch"]) == ("pruned", 0)
    assert "val/f1_best" in record["metrics"]
    assert not any(name.startswith("test/") for name in record["metrics"])
    assert not (tmp_path / "run" / "predictions.csv").exists()
    [told] = study.get_trials()
    assert told.state == PRUNED
    assert told.intermediate_values == {0: record["metrics"]["val/f1_best"]}
    # A rerun of the sweep finds the pruned run finished: it is not trained again.
    assert finished_metrics(tmp_path / "run", record["overrides"]) == record["metrics"]


def test_outside_an_optuna_sweep_the_callback_changes_nothing(
    compose_train, tmp_path: Path
) -> None:
    assert optuna_trial.TRIAL_ID_VARIABLE not in os.environ
    shortened = ["+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1"]
    train(compose_train("hparams_search=optuna", "trainer.max_epochs=1", "attribution=false",
                        *shortened))  # fmt: skip
    record = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert record["status"] == "completed" and "stopped_epoch" not in record
    assert "test/f1" in record["metrics"]


def run_search(tmp_path: Path, data_dir: Path, trials: int) -> Path:
    """A search whose median pruner judges every trial after its first epoch; its sweep dir."""
    command = [sys.executable, "-m", "rolefusion.train", "hparams_search=optuna",
               f"hydra.sweeper.n_trials={trials}", "hydra.sweeper.pruner.n_startup_trials=1",
               "hydra.sweeper.pruner.n_warmup_steps=0", *TINY_DATA, "data.source.num_train=48",
               "trainer.max_epochs=2", f"paths.log_dir={tmp_path / 'outputs'}",
               f"paths.data_dir={data_dir}"]  # fmt: skip
    result = subprocess.run(command, cwd=tmp_path, env=os.environ | {"OMP_NUM_THREADS": "1"},
                            capture_output=True, text=True, timeout=600, check=False)  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    [sweep_dir] = (tmp_path / "outputs" / "optuna" / "multirun").iterdir()
    return sweep_dir


def run_directories(sweep_dir: Path) -> dict[int, Path]:
    """Each job directory by the trial id its sweeper gave it (``.hydra/hydra.yaml``)."""
    found = {}
    for hydra_file in sweep_dir.glob("*/.hydra/hydra.yaml"):
        env = OmegaConf.load(hydra_file).hydra.job.env_set
        found[int(env[optuna_trial.TRIAL_ID_VARIABLE])] = hydra_file.parent.parent
    return found


@pytest.mark.slow
def test_a_search_prunes_trials_records_them_reports_them_and_goes_on(
    tmp_path: Path, data_dir: Path
) -> None:
    sweep_dir = run_search(tmp_path, data_dir, trials=6)
    storage = f"sqlite:///{sweep_dir}/optuna.db"
    trials = optuna.load_study(study_name="optuna", storage=storage).get_trials()
    pruned = [t for t in trials if t.state == PRUNED]
    assert len(trials) == 6 and pruned
    directories = run_directories(sweep_dir)
    for trial in trials:
        record = json.loads((directories[trial._trial_id] / "metrics.json").read_text())
        if trial.state == PRUNED:
            assert (record["status"], record["stopped_epoch"]) == ("pruned", 0)
            assert trial.intermediate_values == {0: record["metrics"]["val/f1_best"]}
        else:
            assert record["status"] == "completed" and len(trial.intermediate_values) == 2
            assert trial.value == record["metrics"]["val/f1_best"]

    report(sweep_dir)
    with (sweep_dir / "report.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert sum(int(row["pruned"]) for row in rows) == len(pruned)
    assert all(row["n"] == "0" for row in rows if row["pruned"] == "1")  # counted, not averaged
    text = (sweep_dir / "report.md").read_text()
    assert "## Optuna study `optuna`" in text
    for trial in trials:  # each trial's number links to its run directory
        link = f"| [{trial.number}]({directories[trial._trial_id].name}/) | "
        assert link + trial.state.name.lower() in text
    assert (sweep_dir / "optuna_history.png").stat().st_size > 1000
    importances = (sweep_dir / "optuna_importances.png").is_file()
    assert importances or "parameter importances (fANOVA) could not be drawn with" in text

    run_search(tmp_path, data_dir, trials=2)  # the same command: the study goes on
    again = optuna.load_study(study_name="optuna", storage=storage).get_trials()
    assert [t.number for t in again] == list(range(8))
    assert [t.state for t in again[:6]] == [t.state for t in trials]
    assert all(t.state.is_finished() for t in again)
    assert len(run_directories(sweep_dir)) == 8
    best = OmegaConf.load(sweep_dir / "optimization_results.yaml")
    study = optuna.load_study(study_name="optuna", storage=storage)
    assert best.best_value == study.best_value and best.best_params == study.best_params


def fake_job(directory: Path, trial: optuna.trial.FrozenTrial, status: str) -> None:
    """A job directory as a search leaves it: overrides, the trial id in Hydra's record, and
    ``metrics.json``."""
    (directory / ".hydra").mkdir(parents=True)
    overrides = [f"{name}={value}" for name, value in trial.params.items()]
    (directory / ".hydra" / "overrides.yaml").write_text(OmegaConf.to_yaml(overrides))
    env = {"hydra": {"job": {"env_set": {optuna_trial.TRIAL_ID_VARIABLE: str(trial._trial_id)}}}}
    (directory / ".hydra" / "hydra.yaml").write_text(OmegaConf.to_yaml(env))
    record = {"status": status, "metrics": {"val/f1_best": trial.value}, "overrides": overrides}
    (directory / "metrics.json").write_text(json.dumps(record))


def test_the_report_counts_pruned_trials_apart_and_links_each_trial_to_its_run(
    tmp_path: Path,
) -> None:
    sweep_dir = tmp_path / "sweep"
    sweep_dir.mkdir()
    study = optuna.create_study(study_name="search", storage=f"sqlite:///{sweep_dir}/optuna.db",
                                direction="maximize")  # fmt: skip
    lr = optuna.distributions.UniformDistribution(0, 1)
    for number, (value, curve) in enumerate([(0.1, [0.5, 0.7]), (0.2, [0.2]), (0.3, [0.6, 0.8])]):
        state = PRUNED if len(curve) == 1 else optuna.trial.TrialState.COMPLETE
        study.add_trial(optuna.trial.create_trial(
            state=state, value=curve[-1], params={"optimizer.lr": value},
            distributions={"optimizer.lr": lr}, intermediate_values=dict(enumerate(curve)),
        ))  # fmt: skip
        status = "pruned" if state == PRUNED else "completed"
        fake_job(sweep_dir / f"job_{number}", study.trials[number], status)

    report(sweep_dir)
    with (sweep_dir / "report.csv").open() as handle:
        rows = {row["optimizer.lr"]: row for row in csv.DictReader(handle)}
    assert [(rows[k]["n"], rows[k]["pruned"]) for k in sorted(rows)] == [
        ("1", "0"), ("0", "1"), ("1", "0")
    ]  # fmt: skip
    assert rows[sorted(rows)[1]]["val/f1_best_mean"] == ""  # a pruned trial is no seed
    text = (sweep_dir / "report.md").read_text()
    assert ": pruned: not tested" in text
    assert "3 trials (2 complete, 1 pruned)" in text
    assert "| [1](job_1/) | pruned | 0.2 | 1 |" in text
    assert "| [2](job_2/) | complete | 0.8 | 2 |" in text
    assert "![optimisation history](search_history.png)" in text
    assert (sweep_dir / "search_history.png").stat().st_size > 1000
    assert (sweep_dir / "search_intermediate_values.png").stat().st_size > 1000
    importances = (sweep_dir / "search_importances.png").is_file()
    assert (
        importances or "The parameter importances (fANOVA) could not be drawn with optuna" in text
    )
