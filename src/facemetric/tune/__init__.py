"""Hyper-parameter search on Optuna (``facemetric tune``): spaces, the trial objective, the study, its report."""

from facemetric.tune.space import Param, SpaceError, parse_param, parse_space
from facemetric.tune.study import TuneResult, TuneSettings, tune

__all__ = ["Param", "SpaceError", "TuneResult", "TuneSettings", "parse_param", "parse_space", "tune"]
