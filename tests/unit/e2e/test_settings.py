"""The app under test serves what the contract suite checks: tool calling is on."""

from __future__ import annotations

from gptoss_modal.deploy import load_deployment
from tests.e2e.settings import E2ESettings


def test_the_e2e_deployment_turns_on_tool_calling() -> None:
    """Under the test's deploy settings vLLM gets --enable-auto-tool-choice and the openai
    tool-call parser, even when the user's config leaves tool calling off."""
    env = E2ESettings.from_env({}).app_env()
    deployment = load_deployment(env={"GPTOSS_TOOL_CALLING": "false", **env})
    assert deployment.serve.tool_calling
    argv = deployment.argv
    assert "--enable-auto-tool-choice" in argv
    assert argv[argv.index("--tool-call-parser") + 1] == "openai"
