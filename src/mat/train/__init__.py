"""The one training loop for every model and method (`python -m mat train`).

`load_run_config(path_or_dict)` validates a run config and fills its defaults;
`train(cfg, out)` trains (or resumes, or recognises as finished) the run into `out`.
"""

from mat.train.loop import DivergedError, RunConflictError, Trainer, train
from mat.train.plan import RunPlan
from mat.train.run_config import ConfigError, load_run_config
from mat.train.tasks import DataMissingError

__all__ = ["ConfigError", "DataMissingError", "DivergedError", "RunConflictError", "RunPlan", "Trainer", "load_run_config", "train"]
