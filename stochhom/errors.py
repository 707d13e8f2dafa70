"""Exceptions and warnings raised by stochhom.

Every error that a user can trigger with bad input is an :class:`InputError`
(a :class:`ValueError`) whose message names the offending value and says how to
fix it. Solver non-convergence raises :class:`ConvergenceError`, which carries the
residual history so that the caller can inspect it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported when an error is built: ``import stochhom`` stays light
    import numpy as np

__all__ = [
    "StochhomError",
    "InputError",
    "MaterialError",
    "ConvergenceError",
    "ConvergenceWarning",
    "GenerationError",
    "RepresentativenessWarning",
    "LeakageError",
    "LeakageWarning",
    "NonPeriodicWarning",
    "OutOfDomainWarning",
]


class StochhomError(Exception):
    """Base class of every exception raised on purpose by stochhom."""


class InputError(StochhomError, ValueError):
    """Invalid user input: an image, a material, an option or a configuration."""


class MaterialError(InputError):
    """A phase law with invalid or inconsistent parameters."""


class ConvergenceError(StochhomError, RuntimeError):
    """An iterative solver did not reach its tolerance.

    Attributes
    ----------
    residuals : list of numpy.ndarray
        Relative equilibrium residual after each iteration, one array per load case.
    iterations : numpy.ndarray
        Iterations performed per load case.
    tol : float
        The tolerance that was requested.
    """

    def __init__(
        self,
        message: str,
        *,
        residuals: Sequence[np.ndarray] = (),
        iterations: Sequence[int] | np.ndarray = (),
        tol: float | None = None,
    ) -> None:
        import numpy as np

        super().__init__(message)
        self.residuals = [np.asarray(r) for r in residuals]
        self.iterations = np.asarray(iterations, dtype=int)
        self.tol = tol


class ConvergenceWarning(UserWarning):
    """Issued instead of :class:`ConvergenceError` when the caller opts in."""


class GenerationError(InputError):
    """A microstructure generator cannot produce the requested sample (e.g. an RSA
    packing target beyond what random sequential addition reaches)."""


class RepresentativenessWarning(UserWarning):
    """A length of the microstructure (correlation length, inclusion size) is
    comparable to the volume element, which then cannot be representative."""


class LeakageError(InputError):
    """A train/test split shares a group (specimen) or an identical sample between its sides."""


class LeakageWarning(UserWarning):
    """A split that may leak: correlated samples (windows of one specimen) split without groups."""


class NonPeriodicWarning(UserWarning):
    """A sample marked non-periodic (a window, a specimen) is solved as a periodic cell:
    its opposite faces are glued together, which adds artificial interfaces."""


class OutOfDomainWarning(UserWarning):
    """A surrogate is evaluated outside the domain it was trained on (extrapolation)."""
