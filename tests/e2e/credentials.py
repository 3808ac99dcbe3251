"""Whether this machine can talk to Modal: the one question that decides if e2e tests run.

Modal reads its token from ``MODAL_TOKEN_ID``/``MODAL_TOKEN_SECRET`` or from the active profile
in ``~/.modal.toml`` (written by ``modal token set`` / ``modal token new``). We ask Modal's own
config reader, which looks at both without any network call.
"""

from __future__ import annotations

from collections.abc import Mapping

HOW_TO_FIX = (
    "run `.venv/bin/modal token new` (signs in through a browser), or `.venv/bin/modal token set "
    "--token-id ak-... --token-secret as-...` with an existing token, or set MODAL_TOKEN_ID and "
    "MODAL_TOKEN_SECRET"
)


def missing_modal_credentials(env: Mapping[str, str] | None = None) -> str | None:
    """Why the e2e suite cannot run, or ``None`` when Modal credentials are present.

    With ``env`` given, only those variables are looked at (no config file), which is how the
    tests pin the message.
    """
    if env is not None:
        token_id, token_secret = env.get("MODAL_TOKEN_ID"), env.get("MODAL_TOKEN_SECRET")
    else:
        from modal.config import config  # reads the env and ~/.modal.toml, offline

        token_id, token_secret = config.get("token_id"), config.get("token_secret")
    if token_id and token_secret:
        return None
    if token_id or token_secret:
        present, absent = (
            ("MODAL_TOKEN_ID", "MODAL_TOKEN_SECRET")
            if token_id
            else ("MODAL_TOKEN_SECRET", "MODAL_TOKEN_ID")
        )
        return (
            f"Modal credentials are incomplete: {present} is set but {absent} is not; {HOW_TO_FIX}"
        )
    return (
        "Modal credentials are missing (no token in the environment or ~/.modal.toml): "
        f"{HOW_TO_FIX}"
    )
