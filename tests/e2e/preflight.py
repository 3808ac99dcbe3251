"""``python -m tests.e2e.preflight``: the first step of ``make e2e``.

Exits non-zero with the reason when Modal credentials are missing, so an e2e run that could not
deploy anything is never mistaken for a pass (pytest alone would report only skips). With
credentials, it says what the suite is about to spend.
"""

from __future__ import annotations

import sys

from tests.e2e.credentials import missing_modal_credentials

EXIT_MISSING_CREDENTIALS = 2


def main() -> int:
    """Print what is missing (exit 2) or what will be deployed (exit 0)."""
    reason = missing_modal_credentials()
    if reason is not None:
        print(f"e2e: cannot run: {reason}", file=sys.stderr)
        return EXIT_MISSING_CREDENTIALS
    from tests.e2e.settings import E2ESettings

    settings = E2ESettings.from_env()
    print(
        f"e2e: Modal credentials found. The suite runs app {settings.app_name!r} on "
        f"{settings.gpu} (billed while it runs, a first cold start can take 20-30 minutes) "
        "and stops it at the end."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
