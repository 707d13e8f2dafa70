"""Studies: TOML study files, parameter sweeps (resumable; local processes or Dask)."""

from .runner import STAGES, results_dir, run_study
from .schema import DESIGNS, DISTRIBUTIONS, Study, StudyError, load_study, study_from_dict
from .sweep import SweepInterrupted, SweepStoreError, open_store, plan_summary, run_sweep

__all__ = ["Study", "StudyError", "load_study", "study_from_dict", "run_sweep", "plan_summary", "open_store",
           "run_study", "results_dir", "STAGES", "DESIGNS", "DISTRIBUTIONS", "SweepInterrupted", "SweepStoreError"]
