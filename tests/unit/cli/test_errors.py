"""Every CLI error a new user meets: no traceback, the documented exit code, the option named,
and no secret in what is printed.

Most run ``main`` in this process with its output captured (a subprocess costs an interpreter
start each); what needs a real process runs as one: a signal, a closed stdout, and the
``python -m gptoss_modal`` entry point itself."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping

import pytest

from gptoss_modal._version import __version__
from gptoss_modal.cli import (
    EXIT_BROKEN_PIPE,
    EXIT_FAILURE,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    build_parser,
    main,
    with_default_subcommands,
)
from gptoss_modal.testing.mock_server import MockConfig, run_mock_in_thread

SECRET = "sk-SECRET-4f9a"  # a made-up key: it must never be printed
RUN_TIMEOUT_S = 60  # a bound on one CLI run on a loaded machine, not a speed claim


def _env(extra: Mapping[str, str] = {}) -> dict[str, str]:
    """The test's environment without a developer's GPTOSS_* settings, plus ``extra``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("GPTOSS_")}
    return {**env, **extra}


def _run(
    *argv: str, env: Mapping[str, str] = {}, stdout_closed: bool = False
) -> subprocess.CompletedProcess[str]:
    """``python -m gptoss_modal ARGV`` to its end (stdout closed before it writes, if asked)."""
    cmd = [sys.executable, "-m", "gptoss_modal", *argv]
    if not stdout_closed:
        return subprocess.run(
            cmd, capture_output=True, text=True, env=_env(env), timeout=RUN_TIMEOUT_S, check=False
        )
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(env)
    )
    assert proc.stdout is not None
    assert proc.stderr is not None
    proc.stdout.close()  # the reader is gone before the first write, as `| head -0`
    err = proc.stderr.read()
    proc.stderr.close()
    return subprocess.CompletedProcess(cmd, proc.wait(timeout=RUN_TIMEOUT_S), "", err)


RunCli = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> RunCli:
    """``gptoss-modal ARGV`` through ``main`` in this process, in the environment ``_env`` gives
    a subprocess, with what it printed captured."""

    def run(*argv: str, env: Mapping[str, str] = {}) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as patch:
            for name in [name for name in os.environ if name.startswith("GPTOSS_")]:
                patch.delenv(name)
            for name, value in env.items():
                patch.setenv(name, value)
            capsys.readouterr()
            code = main(list(argv))
            out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["gptoss-modal", *argv], code, out, err)

    return run


def _clean(result: subprocess.CompletedProcess[str]) -> str:
    """Everything the run printed, checked free of tracebacks and of the secret."""
    printed = result.stdout + result.stderr
    assert "Traceback" not in printed
    assert SECRET not in printed
    return printed


@pytest.fixture(scope="module")
def mock_url() -> Iterator[str]:
    """One mock for the tests that need a server, on a thread of this process (its own
    process cost an interpreter start; the clients, in-process or not, only need its URL)."""
    config = MockConfig(ttft_ms=0, itl_ms=0, api_keys=(SECRET,))
    with run_mock_in_thread(config) as mock:
        yield mock.url


def test_a_secret_in_extra_args_is_never_echoed(run_cli: RunCli) -> None:
    """`command --set extra_args=--api_key=sk-...` exits 2 naming the option, not the key."""
    result = run_cli("command", "--set", f"extra_args=--api_key={SECRET}")
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert "--api_key" in printed
    assert "did you mean --api-key" in printed


def test_a_misspelt_variable_stops_the_command(run_cli: RunCli) -> None:
    """GPTOSS_GPUS=H100:2 exits 2 naming GPTOSS_GPU instead of printing the B200:1 command."""
    result = run_cli("command", env={"GPTOSS_GPUS": "H100:2"})
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert "did you mean 'GPTOSS_GPU'" in printed
    assert "H100:2" not in printed
    assert result.stdout == ""


def test_a_misspelt_key_variable_stops_a_client_command(run_cli: RunCli) -> None:
    """A client command refuses GPTOSS_API_KY too, without showing its value, before any
    request."""
    result = run_cli("chat", "http://127.0.0.1:9", "hi", env={"GPTOSS_API_KY": SECRET})
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert "did you mean 'GPTOSS_API_KEY'" in printed


@pytest.mark.parametrize("port", ["99999", "-1", "eighty"])
def test_a_port_out_of_range_names_the_option(port: str, run_cli: RunCli) -> None:
    """`mock --port 99999` (or -1) is a usage error naming --port and the allowed range."""
    result = run_cli("mock", "--port", port)
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert "argument --port" in printed
    assert "0 to 65535" in printed


def test_a_bad_fault_option_value_names_the_option(run_cli: RunCli) -> None:
    """`--fault stall:seconds=abc` names --fault and fault.seconds and says a number is wanted."""
    result = run_cli("mock", "--port", "0", "--fault", "stall:seconds=abc")
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert "--fault: fault.seconds=" in printed
    assert "a number" in printed
    assert "could not convert" not in printed


def test_a_port_in_use_is_named(run_cli: RunCli) -> None:
    """A mock on a port something else holds exits 2 naming the port and --port."""
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        port = str(held.getsockname()[1])
        result = run_cli("mock", "--port", port, "--quiet")
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert f"port {port} on 127.0.0.1 is already in use" in printed
    assert "--port" in printed


def test_ctrl_c_on_the_mock_exits_130() -> None:
    """SIGINT stops a running mock with exit 130 (an interrupt), and no traceback."""
    cmd = [sys.executable, "-m", "gptoss_modal", "mock", "--port", "0", "--quiet"]
    with subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env()
    ) as proc:
        assert proc.stdout is not None
        assert proc.stderr is not None
        assert "listening on http://" in proc.stdout.readline()
        proc.send_signal(signal.SIGINT)
        try:
            code = proc.wait(timeout=RUN_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()  # or leaving the block waits for it for ever
            pytest.fail(f"the mock was still running {RUN_TIMEOUT_S} s after SIGINT")
        err = proc.stderr.read()
    assert code == EXIT_INTERRUPTED
    assert "Traceback" not in err


@pytest.mark.parametrize("argv", [["command"], ["command", "--json"], ["--version"]])
def test_a_reader_that_goes_away_ends_the_command_quietly(argv: list[str]) -> None:
    """With stdout's reader gone (`| head`), a command exits 141 as Unix tools do, silently."""
    result = _run(*argv, stdout_closed=True)
    assert result.stderr == ""
    assert result.returncode in (EXIT_BROKEN_PIPE, EXIT_OK)  # --version: argparse's own exit
    if argv[0] == "command":
        assert result.returncode == EXIT_BROKEN_PIPE


@pytest.mark.parametrize("output", ["text", "jsonl"])
def test_chat_into_a_closed_pipe_exits_quietly(mock_url: str, output: str) -> None:
    """`chat ... | head` whose reader left: exit 141, nothing on stderr, no traceback."""
    result = _run(
        "chat", mock_url, "hi", "--output", output, env={"GPTOSS_API_KEY": SECRET},
        stdout_closed=True,
    )  # fmt: skip
    assert result.returncode == EXIT_BROKEN_PIPE
    assert result.stderr == ""


def test_a_401_names_the_option_and_the_variable(mock_url: str, run_cli: RunCli) -> None:
    """A refused key exits 1 and says how to give one: --api-key or $GPTOSS_API_KEY (and the
    proxy auth variables), without printing the key that was sent."""
    result = run_cli("chat", mock_url, "hi", "--api-key", f"{SECRET}-wrong")
    printed = _clean(result)
    assert result.returncode == EXIT_FAILURE
    assert "401" in printed
    assert "--api-key KEY or $GPTOSS_API_KEY" in printed
    assert "$GPTOSS_MODAL_KEY and $GPTOSS_MODAL_SECRET" in printed


def test_the_key_from_the_environment_is_accepted(mock_url: str, run_cli: RunCli) -> None:
    """The partner of the 401 test: the right key in $GPTOSS_API_KEY streams a reply."""
    result = run_cli("chat", mock_url, "hi", env={"GPTOSS_API_KEY": SECRET})
    _clean(result)
    assert result.returncode == EXIT_OK
    assert result.stdout.strip()


def test_version_is_the_packages() -> None:
    """`gptoss-modal --version` prints gptoss_modal._version's version and exits 0."""
    result = _run("--version")
    assert result.returncode == EXIT_OK
    assert result.stdout.strip() == f"gptoss-modal {__version__}"


def test_bench_compare_help_is_compares(run_cli: RunCli) -> None:
    """`bench compare --help` shows compare's own usage (its two files), not bench's URL."""
    result = run_cli("bench", "compare", "--help")
    _clean(result)
    assert result.returncode == EXIT_OK
    assert result.stdout.startswith("usage: gptoss-modal bench compare")
    assert "A.json B.json" in result.stdout
    assert "--concurrency" not in result.stdout


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        (["bench", "http://x"], "run"),
        (["bench", "--concurrency", "1", "http://x"], "run"),
        (["bench", "run", "http://x"], "run"),
        (["bench", "compare", "a.json", "b.json"], "compare"),
        (["bench", "cold-start", "http://x"], "cold-start"),
    ],
)
def test_bench_url_keeps_working_beside_its_subcommands(argv: list[str], command: str) -> None:
    """`bench URL` (options first or not) is `bench run URL`; `bench compare` is compare."""
    parser = build_parser()
    args = parser.parse_args(with_default_subcommands(parser, argv))
    assert args.bench_command == command


@pytest.mark.parametrize(
    ("argv", "expected", "dump"),
    [
        (["bench", "compare", "a.json"], "required: B.json", "compare=["),
        (["bench", "compare", "nope.json", "b.json"], "cannot read nope.json", "nope.json='"),
        (["bench", "http://127.0.0.1:9", "--gpu", "T4"], "give its price with", "--gpu='"),
    ],
)
def test_errors_say_what_to_do_not_a_dump_of_the_value(
    argv: list[str], expected: str, dump: str, run_cli: RunCli
) -> None:
    """Bench usage errors are sentences about the option, not ``field=value is not allowed``."""
    result = run_cli(*argv)
    printed = _clean(result)
    assert result.returncode == EXIT_USAGE
    assert expected in printed
    assert dump not in printed
