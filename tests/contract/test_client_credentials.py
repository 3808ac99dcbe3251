"""The contract suite's target carries the credentials the clients use, and never shows them."""

from __future__ import annotations

from tests.contract.conftest_server import real_target

ENV = {
    "GPTOSS_API_KEY": "sk-real-key",
    "GPTOSS_MODAL_KEY": "wk-real-id",
    "GPTOSS_MODAL_SECRET": "ws-real-secret",
}


def test_a_real_target_sends_the_key_and_modal_proxy_auth_from_the_environment() -> None:
    """Against a real URL the target's headers hold the bearer key and, for a Modal app with
    proxy auth, Modal-Key and Modal-Secret, read from the same variables as the CLI's."""
    target = real_target("https://you--gptoss-modal-serve.modal.run", ENV)
    assert target.headers == {
        "Authorization": "Bearer sk-real-key",
        "Modal-Key": "wk-real-id",
        "Modal-Secret": "ws-real-secret",
    }


def test_a_target_without_proxy_auth_sends_only_the_key() -> None:
    """Without GPTOSS_MODAL_KEY/GPTOSS_MODAL_SECRET only the bearer key is sent."""
    target = real_target("http://127.0.0.1:8000", {"GPTOSS_API_KEY": "sk-real-key"})
    assert target.headers == {"Authorization": "Bearer sk-real-key"}


def test_a_targets_repr_shows_no_credential() -> None:
    """pytest prints fixtures' reprs in failures: the key and the proxy token stay out."""
    shown = repr(real_target("https://you--gptoss-modal-serve.modal.run", ENV))
    assert "modal.run" in shown
    for secret in ENV.values():
        assert secret not in shown
