"""Public testing helpers: a vLLM-compatible mock server and stream fixtures.

Import submodules explicitly (``gptoss_modal.testing.mock_server``): they need aiohttp.
"""
