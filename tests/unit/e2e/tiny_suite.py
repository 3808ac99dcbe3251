"""Run a tiny pytest suite in this process, as a fresh pytest session, with the e2e suite's
modules importable (a subprocess would spend a second or more importing what this one has)."""

from __future__ import annotations

from collections.abc import Mapping

import modal._traceback  # noqa: F401 - preloaded, see run_tiny_suite
import pytest


def run_tiny_suite(
    pytester: pytest.Pytester, files: Mapping[str, str], *args: str
) -> pytest.RunResult:
    """Write ``files`` into ``pytester``'s directory and run pytest there with ``args``.

    Modal comes imported: pytester forgets what a run imported, but pytest caches each parsed
    warning filter with its class, so a later run's ServerWarning, imported anew, would not
    match the cached ``default::modal.exception.ServerWarning`` (and each run re-imported it)."""
    pytester.makepyfile(**{name.removesuffix(".py"): text for name, text in files.items()})
    return pytester.runpytest_inprocess(
        "-p", "no:cacheprovider", "-p", "no:asyncio", "--import-mode=importlib", *args
    )  # fmt: skip
