"""``python -m gptoss_modal`` is the ``gptoss-modal`` command."""

import sys

from gptoss_modal.cli import main

sys.exit(main())
