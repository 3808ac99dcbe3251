"""Per-test example budgets that follow the loaded hypothesis profile (tests/conftest.py)."""

from __future__ import annotations

from hypothesis import settings

DEFAULT_PROFILE_EXAMPLES = 100  # what the "default" profile gives a test without a budget


def examples(n: int) -> settings:
    """``n`` examples under the default profile, scaled as the loaded profile scales (thorough:
    x10), for a property whose examples are costly and whose space a few dozen draws cover."""
    scale = settings().max_examples / DEFAULT_PROFILE_EXAMPLES  # the loaded profile's
    return settings(max_examples=max(1, round(n * scale)))
