"""How Modal runs it: deploy settings and the deployment bundle, the image recipe, the
credentials and messages, the Hub preflight and the vLLM launcher inside the container.

Pure but for :mod:`.preflight` (the Hub client) and :mod:`.launch` (subprocesses), which are
imported by name where they are needed; importing this package loads no modal.
"""

from gptoss_modal.deploy.auth import *  # noqa: F403
from gptoss_modal.deploy.auth import __all__ as _auth
from gptoss_modal.deploy.image import *  # noqa: F403
from gptoss_modal.deploy.image import __all__ as _image
from gptoss_modal.deploy.settings import *  # noqa: F403
from gptoss_modal.deploy.settings import __all__ as _settings

__all__ = [*_settings, *_image, *_auth]
