"""Surrogates: Gaussian-process regression and polynomial chaos, with honest uncertainty."""

from .base import Standardizer, SurrogateBase

__all__ = ["Standardizer", "SurrogateBase"]
