"""Logging: silent as a library, stage lines on stderr from the command line (-q, -v), the
``log=`` callback unchanged, and one extrapolation warning per cross-validation, not one per fold."""

from __future__ import annotations

import contextlib
import io
import logging
import warnings
from pathlib import Path

import numpy as np
import pytest

from stochhom.errors import OutOfDomainWarning
from stochhom.log import configure, unconfigure

# the tiny study of tests/test_runner.py, as a file (the command line reads files)
TINY_TOML = """
[study]
name = "tiny"
output = "tiny_results"
seed = 4
[generator]
name = "gaussian"
shape = [16, 16]
correlation_length = 2.0
[sweep]
design = "sobol"
points = 16
replicates = 2
[sweep.parameters]
volume_fraction = { distribution = "uniform", low = 0.25, high = 0.5 }
contrast = { distribution = "loguniform", low = 5.0, high = 50.0 }
[phases.0]
law = "Conductivity"
k = 1.0
[phases.1]
law = "Conductivity"
k = "contrast"
[gallery]
samples = 2
[surrogate]
targets = ["conductivity_eigenvalues_1"]
gpr = { n_restarts = 0 }
[propagation]
n_samples = 256
n_functions = 16
[validation]
n_splits = 3
"""

RUNNER, SWEEP = "stochhom.study.runner", "stochhom.study.sweep"


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    """One run of the tiny study with a ``log=`` callback, no logging configured, every record
    of the ``stochhom`` loggers kept, and stdout/stderr captured."""
    from stochhom.study import load_study
    from stochhom.study.runner import run_study

    tmp = tmp_path_factory.mktemp("logging")
    path = tmp / "tiny.toml"
    path.write_text(TINY_TOML)
    logger = logging.getLogger("stochhom")
    handler = _Records()
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    messages: list[str] = []
    printed = io.StringIO()
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            out = run_study(load_study(path), workers=1, progress=False, log=messages.append)
    finally:
        logger.removeHandler(handler)
        logger.setLevel(logging.NOTSET)
    return {"path": path, "out": out, "messages": messages, "records": handler.records,
            "printed": printed.getvalue()}


def test_the_library_prints_nothing_by_default(tiny, capsys) -> None:
    from stochhom.study import load_study
    from stochhom.study.runner import run_study

    assert tiny["printed"] == ""
    handlers = logging.getLogger("stochhom").handlers
    assert handlers and all(isinstance(h, logging.NullHandler) for h in handlers)
    # no callback and no configuration: a (cached) run says nothing, even at WARNING
    run_study(load_study(tiny["path"]), workers=1, progress=False)
    assert capsys.readouterr() == ("", "")


def test_the_callback_receives_what_the_loggers_record(tiny) -> None:
    messages, records = tiny["messages"], tiny["records"]
    assert "stage sweep: running" in messages and "stage report: running" in messages
    shown = [r.getMessage() for r in records if r.levelno >= logging.INFO and r.name in (RUNNER, SWEEP)]
    assert shown == messages  # the same lines, in the same order
    assert {r.name for r in records if r.getMessage().startswith("stage ")} == {RUNNER}
    stage_lines = [r for r in records if r.getMessage().startswith("stage ") and r.getMessage() in messages]
    assert len(stage_lines) >= 14 and all(r.levelno == logging.INFO for r in stage_lines)
    assert {Path(r.pathname).name for r in stage_lines} == {"runner.py"}  # the record names its caller
    details = [r.getMessage() for r in records if r.levelno == logging.DEBUG]
    assert any("hash" in m for m in details) and not set(details) & set(messages)  # details: loggers only


def test_configure_shows_the_stage_lines_on_stderr(tiny, capsys) -> None:
    from stochhom.study import load_study
    from stochhom.study.runner import run_study

    configure(1)
    try:
        run_study(load_study(tiny["path"]), workers=1, progress=False)
    finally:
        unconfigure()
    out, err = capsys.readouterr()
    assert out == "" and "stage surrogates: up to date\n" in err and "stage sweep: done in" in err
    assert "DEBUG" not in err and "stochhom.study" not in err  # the bare lines, as the CLI always printed
    assert all(isinstance(h, logging.NullHandler) for h in logging.getLogger("stochhom").handlers)


@pytest.mark.parametrize("flags", [["-q", "run"], ["run", "--quiet"], ["run", "-q"]])
def test_quiet_silences_the_stage_lines(tiny, capsys, flags: list[str]) -> None:
    from stochhom.cli import main

    command = flags.index("run")
    assert main([*flags[:command + 1], str(tiny["path"]), "--workers", "1", *flags[command + 1:]]) == 0
    out, err = capsys.readouterr()
    assert err == "" and out == f"report: {tiny['out'] / 'report.html'}\n"


def test_verbose_shows_details(tiny, capsys) -> None:
    from stochhom.cli import main

    assert main(["run", str(tiny["path"]), "--workers", "1"]) == 0
    err = capsys.readouterr().err
    assert "stage validation: up to date" in err and "D stochhom" not in err
    for argv in (["-v", "run", str(tiny["path"])], ["run", str(tiny["path"]), "-v"]):  # before or after the command
        assert main([*argv, "--workers", "1"]) == 0
        err = capsys.readouterr().err
        assert "I stochhom.study.runner: stage validation: up to date" in err
        assert "D stochhom.study.runner: stage validation: hash" in err
    assert all(isinstance(h, logging.NullHandler) for h in logging.getLogger("stochhom").handlers)


class _Extrapolating:
    """A regressor whose every prediction extrapolates (it warns as the surrogates do)."""

    def fit(self, X, y):
        self.mean_ = float(np.mean(y))
        return self

    def predict(self, X, return_std=False):
        warnings.warn(f"{len(X)} of {len(X)} point(s) lie outside the training box: the model extrapolates",
                      OutOfDomainWarning, stacklevel=2)
        mean = np.full(len(X), self.mean_)
        return (mean, np.ones(len(X))) if return_std else mean

    def get_params(self, deep=True):
        return {}

    def set_params(self, **params):
        return self


def test_grouped_cross_validation_warns_once_not_once_per_fold() -> None:
    from stochhom.validation import evaluate, grouped_kfold

    rng = np.random.default_rng(0)
    X = rng.uniform(size=(40, 2))
    y = X.sum(axis=1)
    groups = np.repeat(np.arange(10), 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        table = evaluate(_Extrapolating(), X, y, grouped_kfold(5, rng=0), groups=groups)
    ood = [w for w in caught if issubclass(w.category, OutOfDomainWarning)]
    assert len(ood) == 1 and table["fold"].nunique() == 5
    # 5 folds x (32 train + 8 test) predictions, every one outside
    assert "200 of 200 predicted point(s) in 5 of 5 fold(s)" in str(ood[0].message)


def test_real_surrogate_cross_validation_warns_at_most_once() -> None:
    from stochhom.surrogates import PCE
    from stochhom.validation import evaluate, grouped_kfold

    rng = np.random.default_rng(1)
    X = rng.uniform(size=(60, 2))
    y = X[:, 0] ** 2 + X[:, 1]
    with pytest.warns(OutOfDomainWarning, match=r"fold\(s\) lie outside") as caught:
        evaluate(PCE(degree=2), X, y, grouped_kfold(5, rng=0), groups=np.arange(60))
    assert len([w for w in caught if issubclass(w.category, OutOfDomainWarning)]) == 1


def test_ood_evaluation_logs_its_extrapolation_once(caplog) -> None:
    from stochhom.validation import ood_evaluation

    rng = np.random.default_rng(2)
    X = rng.uniform(-0.5, 1.5, size=(150, 2))
    y = X.sum(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error", OutOfDomainWarning)
        with caplog.at_level(logging.DEBUG, logger="stochhom"):
            res = ood_evaluation(_Extrapolating(), X, y, np.array([[0.0, 1.0], [0.0, 1.0]]), (0.0, 0.25, np.inf),
                                 n_splits=3, n_boot=20, rng=0)
    assert res.ok
    lines = [r for r in caplog.records if "outside the fold's training box" in r.getMessage()]
    assert len(lines) == 1 and lines[0].name == "stochhom.validation.evaluate" and "3 of 3 fold(s)" in lines[0].message


def test_configure_replaces_its_handler(tmp_path: Path) -> None:
    stream = io.StringIO()
    configure(2, stream=stream)
    configure(0, stream=stream)
    try:
        logger = logging.getLogger("stochhom.study.runner")
        logger.info("hidden")
        logger.warning("shown")
    finally:
        unconfigure()
    assert stream.getvalue() == "shown\n"
    logging.getLogger("stochhom.study.runner").warning("nowhere")  # NullHandler: no lastResort output
    assert stream.getvalue() == "shown\n"
