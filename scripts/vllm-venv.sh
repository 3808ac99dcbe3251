#!/usr/bin/env bash
# Create (once) the cached virtualenv holding vLLM, used only by the contract tests that
# check our argv and wire format against vLLM's own parser and pydantic models.
# It lives outside the clone because it takes ~8 minutes and ~11 GB to build.
set -euo pipefail

VLLM_VERSION="${VLLM_VERSION:-0.13.0}"
CACHE_ROOT="${GPTOSS_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/gptoss-modal}"
VENV="${VLLM_VENV:-$CACHE_ROOT/vllm-$VLLM_VERSION}"
UV="${UV:-uv}"

# A marker written last means a half-built venv (killed session, full disk) is never reused.
if [ -f "$VENV/.complete" ]; then
  echo "vllm venv: $VENV (cached)"
  exit 0
fi

echo "vllm venv: building $VENV (vllm==$VLLM_VERSION, ~8 min and ~11 GB the first time)"
rm -rf "$VENV"
mkdir -p "$(dirname "$VENV")"
"$UV" venv --quiet --python "${PYTHON:-python3}" "$VENV"
VIRTUAL_ENV="$VENV" "$UV" pip install --quiet --python "$VENV/bin/python" "vllm==$VLLM_VERSION"
"$VENV/bin/python" -c "import vllm, sys; assert vllm.__version__ == sys.argv[1], vllm.__version__" "$VLLM_VERSION"
touch "$VENV/.complete"
echo "vllm venv: ready at $VENV"
