"""Shared test set-up: figures render off-screen in unit tests (never in notebooks)."""

import matplotlib

matplotlib.use("Agg")
