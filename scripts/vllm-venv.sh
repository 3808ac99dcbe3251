#!/usr/bin/env bash
# Create (once) the cached virtualenv holding one vLLM version ($VLLM_VERSION), used only by the
# contract tests that check our argv and wire format against that vLLM's own parser and models.
# `make vllm-venv` runs it once per supported version.
# It lives outside the clone because it takes ~8 minutes and ~11 GB to build, and is installed
# from a hashed lock file so every machine checks against the same vLLM, torch and pydantic.
set -euo pipefail

VLLM_VERSION="${VLLM_VERSION:-0.13.0}"
CACHE_ROOT="${GPTOSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gptoss-modal}"
VENV="$CACHE_ROOT/vllm-$VLLM_VERSION"
UV="${UV:-uv}"
LOCK="$(cd "$(dirname "$0")/.." && pwd)/requirements/vllm-$VLLM_VERSION.lock"

[ -f "$LOCK" ] || { echo "vllm venv: no lock file $LOCK" >&2; exit 1; }
want="$(sha256sum "$LOCK" | cut -d' ' -f1)"

# The marker is written last and names the lock it was built from: a half-built venv (killed
# session, full disk) or one built from an older lock is never reused.
if [ -f "$VENV/.complete" ] && [ "$(cat "$VENV/.complete")" = "$want" ]; then
  echo "vllm venv: $VENV (cached)"
  exit 0
fi

echo "vllm venv: building $VENV from $(basename "$LOCK") (~8 min and ~11 GB the first time)"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$UV" venv --quiet --python "${PYTHON:-python3}" "$VENV"
"$UV" pip sync --quiet --python "$VENV/bin/python" "$LOCK"
"$VENV/bin/python" -c "import vllm, sys; assert vllm.__version__ == sys.argv[1], vllm.__version__" "$VLLM_VERSION"
echo "$want" > "$VENV/.complete"
echo "vllm venv: ready at $VENV"
