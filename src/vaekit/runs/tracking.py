"""The experiment trackers of a run folder: ``vaekit train --logger NAME`` (``loggers =
[...]`` in TOML), with their run ids kept in ``RUN/trackers.json`` so that ``--resume``,
``vaekit evaluate`` and ``vaekit report`` continue the same tracker runs.

Where each tracker writes: TensorBoard ``RUN/tensorboard/``; MLflow
``$MLFLOW_TRACKING_URI`` (experiment ``vaekit``); W&B project ``$WANDB_PROJECT`` (else
``vaekit``), its files under ``RUN/wandb/``, online or offline as ``$WANDB_MODE`` says.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..training import checkpoints as ckpt
from ..training.loggers import Logger, MLflow, TensorBoard, WandB
from .config import LOGGERS

#: The file in the run folder that records the tracker runs.
TRACKERS_FILE = "trackers.json"


_PACKAGES = {
    "tensorboard": ("tensorboardX", "tensorboardX"),
    "mlflow": ("mlflow", "mlflow-skinny"),
    "wandb": ("wandb", "wandb"),
}


def require(names: list[str]) -> None:
    """Fail before training (one ``ImportError`` line naming the extra) when a tracker's
    package is not installed."""
    import importlib.util

    for n in names:
        module, package = _PACKAGES[n]
        if importlib.util.find_spec(module) is None:
            raise ImportError(f"--logger {n} needs the optional package {package}: pip install 'vaekit[{n}]'")
    no_uri = not os.environ.get("MLFLOW_TRACKING_URI")
    if "mlflow" in names and no_uri and importlib.util.find_spec("sqlalchemy") is None:
        # MLflow's default store is sqlite:///mlflow.db in the working folder, which needs full mlflow
        raise ValueError(
            "--logger mlflow: set MLFLOW_TRACKING_URI (a server such as http://localhost:5000, or "
            "file:/path/mlruns with MLFLOW_ALLOW_FILE_STORE=true), or pip install mlflow for its default sqlite store."
        )


def make_logger(run: Path, name: str, saved: Mapping[str, Any] | None = None, **kw: Any) -> Logger:
    """The logger ``name`` of the run folder ``run``; ``saved`` (from ``trackers.json``)
    continues its tracker run."""
    saved = saved or {}
    kw.setdefault("logged_epochs", int(saved.get("logged_epochs", 0)))
    if name == "tensorboard":
        return TensorBoard(saved.get("log_dir") or run / "tensorboard", **kw)
    if name == "mlflow":
        uri = saved.get("tracking_uri") or os.environ.get("MLFLOW_TRACKING_URI")
        return MLflow(
            uri,
            experiment=saved.get("experiment", "vaekit"),
            run_name=run.name,
            run_id=saved.get("run_id"),
            **kw,
        )
    if name == "wandb":
        project = saved.get("project") or os.environ.get("WANDB_PROJECT") or "vaekit"
        return WandB(project, dir=run, run_id=saved.get("run_id"), name=run.name, **kw)
    raise ValueError(f"unknown logger {name!r}; choose from {', '.join(LOGGERS)}.")


def _saved(run: Path) -> dict[str, Any]:
    p = run / TRACKERS_FILE
    return ckpt.read_json(p) if p.is_file() else {}


def _describe(name: str, lg: Logger) -> dict[str, Any]:
    out: dict[str, Any] = {"logged_epochs": lg.last_step}
    if isinstance(lg, TensorBoard):
        out["log_dir"] = str(lg.log_dir)
    elif isinstance(lg, MLflow):
        import mlflow

        out.update(
            run_id=lg.run_id,
            experiment=lg.experiment,
            tracking_uri=lg.tracking_uri or mlflow.get_tracking_uri(),
        )
    elif isinstance(lg, WandB):
        out.update(run_id=lg.run_id, project=lg.project)
    return out


class RunTrackers:
    """The loggers of one ``vaekit train`` call, as one ``vk.fit`` callback; the run ids
    are written to ``trackers.json`` once the trackers have opened (after the first epoch)."""

    def __init__(
        self,
        run: Path,
        names: list[str],
        *,
        resume: bool,
        config: dict,
        lr: Any = None,
        terms_data: Any = None,
    ):
        self.run = run
        saved = _saved(run) if resume else {}  # a new run (also after --overwrite) starts new tracker runs
        self.loggers = {
            n: make_logger(run, n, saved.get(n), config=config, lr=lr, terms_data=terms_data) for n in names
        }
        self.recorded: dict[str, Any] = {}

    def __call__(self, state) -> None:
        for lg in self.loggers.values():
            lg(state)
        self.record()

    def record(self) -> None:
        now = {n: _describe(n, lg) for n, lg in self.loggers.items() if not lg.failed}
        if now != self.recorded:
            try:
                ckpt.write_json(self.run / TRACKERS_FILE, {**_saved(self.run), **now})
                self.recorded = now
            except OSError:
                pass  # the trackers keep running; a resume then starts new tracker runs

    def close(self) -> None:
        for lg in self.loggers.values():
            lg.close()


def reopen(run: str | os.PathLike) -> list[Logger]:
    """The loggers recorded in ``run/trackers.json`` (none when it has none)."""
    run = Path(run)
    return [make_logger(run, n, s) for n, s in _saved(run).items() if n in LOGGERS]


def log_metrics(run: str | os.PathLike, metrics: Mapping[str, Any]) -> None:
    """Send final metrics (``vaekit evaluate``'s) to the run's trackers, as ``eval/<key>``."""
    for lg in reopen(run):
        lg.log_metrics(metrics, step=_last_epoch(Path(run)))
        lg.close()


def log_images(run: str | os.PathLike, images: Mapping[str, str | os.PathLike]) -> None:
    """Send image files (the report's plots) to the run's trackers as artifacts."""
    for lg in reopen(run):
        lg.log_images(images, step=_last_epoch(Path(run)))
        lg.close()


def _last_epoch(run: Path) -> int:
    meta = ckpt.read_json(run / ckpt.META_FILE) if (run / ckpt.META_FILE).is_file() else {}
    return int(meta.get("epochs") or 0)
