# Sourced by scripts/run and scripts/test: a virtualenv with the project, and a mosquitto binary.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="$ROOT/.venv"

find_python() {
    for candidate in python3.13 python3.12 python3.11 python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "$candidate"
            return
        fi
    done
    echo "dsmr-mqtt needs Python 3.11 or newer: install it (apt-get install python3 python3-venv)" >&2
    exit 1
}

ensure_venv() {
    if [ ! -x "$VENV/bin/python" ]; then
        echo "==> creating a virtualenv in .venv"
        "$(find_python)" -m venv "$VENV"
    fi
    # Reinstall only when the project's metadata changed since the last install.
    local stamp="$VENV/.dsmr-installed" want
    want="$(sha256sum "$ROOT/pyproject.toml" | cut -d' ' -f1)"
    if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
        echo "==> installing dsmr-mqtt and its dev tools into .venv"
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
        "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e "$ROOT[dev]"
        echo "$want" >"$stamp"
    fi
}

# ensure_debian_packages BINARY:PACKAGE ...: install what is missing (as root), else say how.
ensure_debian_packages() {
    local missing=() pair
    for pair in "$@"; do
        command -v "${pair%%:*}" >/dev/null 2>&1 || [ -x "/usr/sbin/${pair%%:*}" ] || missing+=("${pair#*:}")
    done
    [ ${#missing[@]} -eq 0 ] && return
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        echo "==> installing Debian packages: ${missing[*]}"
        DEBIAN_FRONTEND=noninteractive apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
        return
    fi
    echo "missing: ${missing[*]}; install with 'sudo apt-get install ${missing[*]}', then run this again" >&2
    exit 1
}

ensure_venv
ensure_debian_packages mosquitto:mosquitto
export PATH="$VENV/bin:$PATH"
cd "$ROOT"
