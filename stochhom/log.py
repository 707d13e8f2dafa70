"""Logging: the ``stochhom`` logger hierarchy, and the one handler the command line installs.

Every module that reports progress logs through ``logging.getLogger(__name__)``, so the
loggers form one tree under ``stochhom``:

=================================  =======================================================
logger                             records
=================================  =======================================================
``stochhom.study.runner``          INFO: one line per stage (``stage surrogates: running``,
                                   ``... done in 4.2 s``); DEBUG: cache decisions, the
                                   extrapolation silenced inside a stage
``stochhom.study.sweep``           WARNING: the resume notice of an unfinished sweep,
                                   the repair notice, failed samples; INFO: a resume with
                                   nothing left to do, nothing to repair; DEBUG: the plan
``stochhom.validation.evaluate``   DEBUG: the extrapolation of an OOD evaluation (which
                                   measures it on purpose)
=================================  =======================================================

As a library, stochhom prints nothing: the ``stochhom`` logger has a
:class:`logging.NullHandler` only (and ``lastResort`` stays silent). An application
chooses what to see with the standard :mod:`logging` machinery, e.g.
``logging.basicConfig(level=logging.INFO)``, or with :func:`configure`, which the
``stochhom`` command calls with its ``-v``/``-q`` flags.

This module imports only the standard library: the command line imports it before
parsing its arguments.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable
from typing import TextIO

__all__ = ["LOGGER_NAME", "configure", "emitter", "get_logger", "unconfigure", "verbosity_level"]

#: Name of the root of the hierarchy.
LOGGER_NAME = "stochhom"

logging.getLogger(LOGGER_NAME).addHandler(logging.NullHandler())


def get_logger(name: str) -> logging.Logger:
    """The logger ``name`` (a module's ``__name__``), with the hierarchy's ``NullHandler`` in place."""
    return logging.getLogger(name)


def verbosity_level(verbosity: int) -> int:
    """Level of a verbosity: 0 or less WARNING, 1 INFO (the command line's default), 2 or more DEBUG."""
    return logging.WARNING if verbosity <= 0 else logging.INFO if verbosity == 1 else logging.DEBUG


class _StderrHandler(logging.StreamHandler):
    """A stream handler that writes to the *current* ``sys.stderr`` (or a given stream), so that a
    redirected or captured stderr (``contextlib.redirect_stderr``, pytest's ``capsys``) gets the records."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__(stream)
        self._fixed = stream

    @property  # type: ignore[override]
    def stream(self) -> TextIO:
        return self._fixed if self._fixed is not None else sys.stderr

    @stream.setter
    def stream(self, value: TextIO | None) -> None:  # StreamHandler.__init__ assigns it
        self._fixed = value


class _CompactFormatter(logging.Formatter):
    """The bare message at INFO and above (the command line's lines, as before); at DEBUG
    verbosity, every record names its level and logger: ``D stochhom.study.runner: ...``."""

    def __init__(self, detailed: bool) -> None:
        super().__init__("%(levelname).1s %(name)s: %(message)s" if detailed else "%(message)s")


def configure(verbosity: int = 1, stream: TextIO | None = None) -> logging.Handler:
    """Show stochhom's log records on stderr: install one handler on the ``stochhom`` logger.

    Calling it again replaces the handler it installed before (nothing else is touched).

    Parameters
    ----------
    verbosity : int
        0 or less: warnings only (``-q``); 1: the stage lines (INFO, the command line's
        default); 2 or more: details (DEBUG, ``-v``), each line prefixed with level and logger.
    stream : file-like, optional
        Where to write (default: the current ``sys.stderr`` at each record).

    Returns
    -------
    logging.Handler
        The handler installed.
    """
    unconfigure()
    level = verbosity_level(verbosity)
    handler = _StderrHandler(stream)
    handler.setFormatter(_CompactFormatter(detailed=level <= logging.DEBUG))
    handler.setLevel(level)
    handler._stochhom_configured = True  # type: ignore[attr-defined]
    logger = logging.getLogger(LOGGER_NAME)
    logger.addHandler(handler)
    logger.setLevel(level)
    return handler


def unconfigure() -> None:
    """Remove the handler of :func:`configure` and reset the ``stochhom`` logger's level."""
    logger = logging.getLogger(LOGGER_NAME)
    for h in list(logger.handlers):
        if getattr(h, "_stochhom_configured", False):
            logger.removeHandler(h)
            h.close()
    logger.setLevel(logging.NOTSET)


def emitter(logger: logging.Logger, callback: Callable[[str], None] | None) -> Callable[..., None]:
    """A ``say(message, level=logging.INFO)`` function: every message goes to ``logger``, and also to
    ``callback`` when one is given (the ``log=`` argument of :func:`~stochhom.study.runner.run_study`
    and :func:`~stochhom.study.sweep.run_sweep`, which receives exactly the lines it always did)."""

    def say(message: str, level: int = logging.INFO) -> None:
        if callback is not None:
            callback(message)
        logger.log(level, message, stacklevel=2)  # the record names the caller, not this function

    return say
