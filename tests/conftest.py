"""Shared fixtures: a private asset cache and results folder per test, so tests never touch the real ones."""

import pytest


@pytest.fixture
def tmp_cache(tmp_path, monkeypatch):
    """An empty asset cache for this test (TLCOURSE_DATA)."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("TLCOURSE_DATA", str(cache))
    return cache


@pytest.fixture
def tmp_results(tmp_path, monkeypatch):
    """An empty results folder for this test (TLCOURSE_RESULTS), full mode."""
    monkeypatch.setenv("TLCOURSE_RESULTS", str(tmp_path / "results"))
    monkeypatch.delenv("TLCOURSE_SMOKE", raising=False)
    return tmp_path / "results"
