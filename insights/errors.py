"""Errors of the insights app, with stable codes."""

from __future__ import annotations

from omni.errors import ApplicationError, ConflictError


class InvalidSummaryError(ApplicationError):
    """Customer summaries (frequency, recency, age, spend) that no model can take: the caller's bug or bad data."""


class ModelFitError(ConflictError):
    """The data do not identify the model (too few customers, no repeat buyers) or the optimiser failed."""


class InsightRunInProgressError(ConflictError):
    """Another nightly run holds the lock."""
