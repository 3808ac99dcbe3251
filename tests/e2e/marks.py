"""What every e2e test carries: a timeout its budgets allow, and Modal's server notices let through.

Two project-wide settings in ``pyproject.toml`` do not fit a run that deploys to a GPU:

- ``timeout = 300``: pytest-timeout times setup as well as the call (unless ``func_only``), and
  the first e2e test's setup builds the image and waits out a cold start. Each e2e test gets
  instead the longest any one test can take: the image build, the start-up timeout and its
  margin (the session fixture's setup), then the longest call (the contract suite run).
- ``filterwarnings = ["error"]``: Modal turns server messages (``ClientHello``, ``AppPublish``,
  RPC trailers) into ``modal.exception.ServerWarning`` (``modal/_traceback.py``), so any notice
  from Modal's servers would become an exception inside ``app.run()``. They are shown, not
  raised: they are news from the platform, not a fault of this code.
"""

from __future__ import annotations

import pytest

IMAGE_BUILD_BUDGET_S = 30 * 60  # first build of the vLLM image: ~11 GB of wheels, then layers
HEALTH_MARGIN_S = 120  # beyond the app's startup timeout, for the proxy and image pull
CONTRACT_TIMEOUT_S = 30 * 60  # the contract suite against the deployment, in a subprocess
SERVER_WARNINGS = "default::modal.exception.ServerWarning"


def per_test_timeout_s(startup_timeout_s: float) -> float:
    """The longest one e2e test may take, setup and teardown included."""
    setup_s = IMAGE_BUILD_BUDGET_S + startup_timeout_s + HEALTH_MARGIN_S
    return setup_s + CONTRACT_TIMEOUT_S


def e2e_marks(startup_timeout_s: float) -> list[pytest.MarkDecorator]:
    """The marks the e2e conftest adds to every e2e test."""
    return [
        pytest.mark.timeout(per_test_timeout_s(startup_timeout_s)),
        pytest.mark.filterwarnings(SERVER_WARNINGS),
    ]
