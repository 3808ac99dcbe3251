"""The e2e suite's offline parts: the one-reason skip, `make e2e`'s preflight, budgets, results.

These run in `make test`; the e2e tests themselves need Modal credentials.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from gptoss_modal import ConfigError
from gptoss_modal.bench.budgets import evaluate_budgets, load_budgets, parse_budgets
from gptoss_modal.testing.mock_server import MockConfig, MockVLLM
from tests.e2e.credentials import missing_modal_credentials
from tests.e2e.latency import one_stream_run, record
from tests.e2e.results import E2EResults, check_line
from tests.e2e.settings import DEFAULT_BUDGETS, ROOT, E2ESettings

SECRET = "e2e-unit-secret-that-must-not-show"


def _no_credentials_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MODAL_", "GPTOSS_"))}
    env["MODAL_CONFIG_PATH"] = str(tmp_path / "no-modal.toml")
    return env


# ---- credentials ----------------------------------------------------------------------------


def test_both_token_parts_mean_credentials_are_present() -> None:
    """A token id and secret in the environment are enough to run the suite."""
    env = {"MODAL_TOKEN_ID": "ak-1", "MODAL_TOKEN_SECRET": "as-2"}
    assert missing_modal_credentials(env) is None


def test_missing_credentials_say_how_to_set_them() -> None:
    """With no token the reason names `modal token new`, `modal token set` and both variables."""
    reason = missing_modal_credentials({})
    assert reason is not None
    assert "modal token new" in reason
    assert "modal token set" in reason
    assert "MODAL_TOKEN_ID and MODAL_TOKEN_SECRET" in reason


def test_half_a_token_names_the_missing_half() -> None:
    """With only the id set, the reason says the secret is what is missing."""
    reason = missing_modal_credentials({"MODAL_TOKEN_ID": "ak-1"})
    assert reason is not None
    assert "MODAL_TOKEN_SECRET is not" in reason


def test_without_credentials_every_e2e_test_is_skipped_with_one_reason(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """`pytest tests/e2e -m e2e` with no Modal token skips every test, all for the same reason."""
    # A fresh pytest session in this process (a subprocess spent a second starting Python and
    # pytest), from the repository root, with the environment the subprocess had.
    for name in os.environ:
        if name.startswith(("MODAL_", "GPTOSS_", "PYTEST_")):
            monkeypatch.delenv(name)
    monkeypatch.setenv("MODAL_CONFIG_PATH", str(tmp_path / "no-modal.toml"))
    monkeypatch.chdir(ROOT)
    result = pytester.runpytest_inprocess(
        "tests/e2e", "-m", "e2e", "-rs", "-p", "no:cacheprovider", f"--rootdir={ROOT}"
    )
    stdout = result.stdout.str()
    assert result.ret == 0, stdout + result.stderr.str()
    reasons = set(re.findall(r"^SKIPPED \[\d+\] [^:]+: (.*)$", stdout, re.MULTILINE))
    assert reasons == {missing_modal_credentials({})}
    summary = stdout.strip().splitlines()[-1]
    assert re.search(r"\b\d+ skipped\b", summary)
    assert not re.search(r"passed|failed|error", summary)


def test_make_e2e_preflight_fails_with_the_reason(tmp_path: Path) -> None:
    """`python -m tests.e2e.preflight` exits non-zero and prints what is missing."""
    run = subprocess.run(
        [sys.executable, "-m", "tests.e2e.preflight"],
        cwd=ROOT,
        env=_no_credentials_env(tmp_path),
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 2
    assert str(missing_modal_credentials({})) in run.stderr


def test_make_e2e_preflight_passes_with_credentials(tmp_path: Path) -> None:
    """With a token it exits 0, names the app and GPU it will run, and never shows the token."""
    env = _no_credentials_env(tmp_path) | {
        "MODAL_TOKEN_ID": "ak-unit",
        "MODAL_TOKEN_SECRET": SECRET,
        "GPTOSS_E2E_GPU": "H200:1",
    }
    run = subprocess.run(
        [sys.executable, "-m", "tests.e2e.preflight"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 0, run.stderr
    assert "'gptoss-e2e'" in run.stdout
    assert "H200:1" in run.stdout
    assert SECRET not in run.stdout + run.stderr


# ---- settings ---------------------------------------------------------------------------------


def test_the_app_under_test_is_locked_and_capped() -> None:
    """The test app uses its own name and Secret, api_key auth, strict preflight, one container."""
    env = E2ESettings.from_env({}).app_env()
    assert env["GPTOSS_APP_NAME"] == "gptoss-e2e"
    assert env["GPTOSS_SECRET_NAME"] == "gptoss-e2e-api-key"
    assert env["GPTOSS_AUTH"] == "api_key"
    assert env["GPTOSS_PREFLIGHT"] == "strict"
    assert (env["GPTOSS_MIN_CONTAINERS"], env["GPTOSS_MAX_CONTAINERS"]) == ("0", "1")


def test_the_gpu_follows_the_users_config_unless_overridden() -> None:
    """Without GPTOSS_E2E_GPU the suite tests the GPU the user's config deploys."""
    assert E2ESettings.from_env({"GPTOSS_GPU": "H100:1"}).gpu == "H100:1"
    assert (
        E2ESettings.from_env({"GPTOSS_GPU": "H100:1", "GPTOSS_E2E_GPU": "B200:1"}).gpu == "B200:1"
    )


# ---- budgets ----------------------------------------------------------------------------------


@pytest.mark.parametrize("gpu", ["B200:1", "H200:1", "H100:2"])
def test_each_gpu_has_sourced_level_one_budgets(gpu: str) -> None:
    """budgets.toml parses as a `gptoss-modal bench` budgets file, and each GPU type has a
    source, a cold-start budget and level-1 limits on TTFT, TPOT and the decode rate."""
    settings = E2ESettings.from_env({"GPTOSS_E2E_GPU": gpu})
    section = load_budgets(DEFAULT_BUDGETS).section(settings.gpu_type)
    assert section.source is not None
    assert "not measured" in section.source  # honest until a real run replaces them
    assert section.cold_start_s is not None
    limits = section.for_level(1)
    assert {"ttft_p95_ms", "tpot_p50_ms", "min_stream_tokens_per_s"}.issubset(limits)


def test_a_gpu_without_budgets_is_named() -> None:
    """A GPU type with no section is an error that lists the sections there are."""
    with pytest.raises(ConfigError, match="B200"):
        load_budgets(DEFAULT_BUDGETS).section("A100-80GB")


BUDGETS_FOR_THE_MOCK = """
[mock]
source = "the mock below: 20 ms to the first token, 2 ms a token"
[mock.concurrency.1]
ttft_p95_ms = 5000
tpot_p50_ms = 500
min_stream_tokens_per_s = 1
"""


async def test_the_latency_check_runs_against_the_mock() -> None:
    """The e2e latency path (load driver at c=1 plus budgets) works end to end on the mock,
    records its numbers and passes loose budgets."""
    section = parse_budgets(tomllib.loads(BUDGETS_FOR_THE_MOCK)).section("mock")
    settings = E2ESettings(warm_requests=3, input_tokens=32, output_tokens=16)
    results = E2EResults(app_name="gptoss-e2e", gpu="mock")
    config = MockConfig(api_keys=(SECRET,), ttft_ms=20.0, itl_ms=2.0)
    async with MockVLLM(config) as mock:
        run = await one_stream_run(mock.url, SECRET, settings, section)
    level = record(run, results)
    assert level.summary.completed == 3
    assert {"ttft_p50_ms", "tpot_p50_ms", "stream_tokens_per_s"}.issubset(results.measurements)
    assert [c.key for c in results.checks] == list(section.for_level(1))
    assert all(c.passed for c in results.checks), [check_line(c) for c in results.checks]


def test_a_check_line_says_which_way_the_limit_goes() -> None:
    """A failed lower limit and an unmeasured one read clearly in the summary."""
    checks = evaluate_budgets(
        {"ttft_p95_ms": 100.0, "min_stream_tokens_per_s": 50.0},
        {"ttft_p95_ms": 80.0, "stream_tokens_per_s": None},
    )
    expected = "[ok  ] ttft_p95_ms: 80 (budget <= 100)"  # a report line, not a timing
    assert check_line(checks[0]) == expected
    assert check_line(checks[1]) == "[FAIL] min_stream_tokens_per_s: not measured (budget >= 50)"


# ---- results --------------------------------------------------------------------------------


def test_results_are_written_as_json_without_the_key(tmp_path: Path) -> None:
    """The results file holds the measurements and verdicts, and the key nowhere."""
    results = E2EResults(app_name="gptoss-e2e", gpu="B200:1")
    results.hide(SECRET)
    results.measurements["ttft_p95_ms"] = 420.0
    results.checks = evaluate_budgets({"ttft_p95_ms": 500.0}, results.measurements)
    results.outcome("tests/e2e/test_deployment.py::test_x", "passed")
    results.note(f"the server said: bad key {SECRET}")
    path = tmp_path / "out" / "results.json"
    results.write(path)
    text = path.read_text()
    data = json.loads(text)
    assert data["measurements"] == {"ttft_p95_ms": 420.0}
    assert data["budgets"][0]["passed"] is True
    assert SECRET not in text
    summary = "\n".join(results.summary_lines())
    assert "1/1 tests passed" in summary
    assert SECRET not in summary


def test_a_run_with_only_skips_writes_nothing() -> None:
    """Results count as a run only when some test was not skipped."""
    results = E2EResults(app_name="gptoss-e2e", gpu="B200:1")
    results.outcome("a", "skipped")
    assert not results.ran
    results.outcome("b", "failed")
    assert results.ran
