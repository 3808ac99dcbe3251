"""A local stand-in for Modal's control plane, for rehearsing ``modal deploy`` offline.

:class:`ModalStub` serves, on 127.0.0.1, the gRPC methods ``modal deploy``, ``modal run`` and
``modal app stop`` call for this project's app, records every request, and answers any other
method with UNIMPLEMENTED naming it; :func:`run_modal` runs the real CLI against it.
"""

from tests.modal_stub._cli import CLI_TIMEOUT_S, MODAL_CLI, modal_env, run_modal
from tests.modal_stub._dispatch import Recorded, method_names
from tests.modal_stub._servicer import WEB_URL_SUFFIX
from tests.modal_stub._stub import ModalStub

__all__ = [
    "CLI_TIMEOUT_S",
    "MODAL_CLI",
    "WEB_URL_SUFFIX",
    "ModalStub",
    "Recorded",
    "method_names",
    "modal_env",
    "run_modal",
]
