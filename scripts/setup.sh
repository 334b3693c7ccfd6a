#!/usr/bin/env bash
# Install everything confcom needs on Debian 12 (as root), build and install the extension into a
# project-local az, then run the main job on the bundled sample. Safe to run again: each step is
# skipped when its result is already there.
#
#   Debian packages -> .venv (azure-cli, pytest, our dependencies) -> dist/confcom-*.whl
#   -> `az extension add --source` (config in .cache/azure/) -> samples/generated/hello.tar
#   -> az confcom acipolicygen on a copy of samples/template.json
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$REPO"
VENV="$REPO/.venv"
export AZURE_CONFIG_DIR="$REPO/.cache/azure"
export AZURE_EXTENSION_DIR="$AZURE_CONFIG_DIR/cliextensions"
export AZURE_CORE_COLLECT_TELEMETRY=false
say() { echo "setup: $*" >&2; }

# 1. Debian packages: docker daemon, registry, skopeo, htpasswd, curl and the ext4/dm-verity tools
#    the tests compare against; python3-venv for the virtual environment.
APT_PACKAGES=(docker.io docker-registry skopeo apache2-utils curl cryptsetup-bin e2fsprogs python3 python3-venv)
missing=()
for pkg in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ ${#missing[@]} -gt 0 ]; then
    say "installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# 2. Python virtual environment with azure-cli, the test tools and our runtime dependencies
#    (declared once, in setup.cfg).
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV"
    python3 -m venv "$VENV"
fi
DEPS="$("$VENV/bin/python" - <<'PY'
import configparser
cfg = configparser.ConfigParser()
cfg.read("setup.cfg")
print(" ".join(line.strip() for line in cfg["options"]["install_requires"].splitlines() if line.strip()))
PY
)"
# azure-cli pinned: the in-process test harness uses its command-loader internals
REQS="azure-cli==2.91.0 pytest build wheel setuptools packaging $DEPS"
STAMP="$VENV/.confcom-requirements"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$REQS" ] || [ ! -x "$VENV/bin/az" ]; then
    say "installing Python packages into $VENV (azure-cli takes a minute)"
    # shellcheck disable=SC2086
    if ! "$VENV/bin/python" -m pip install -q --disable-pip-version-check $REQS >"$VENV/pip-install.log" 2>&1; then
        cat "$VENV/pip-install.log" >&2
        exit 1
    fi
    echo "$REQS" > "$STAMP"
fi

# 3. Build the extension wheel (only when a packaged file changed).
WHEEL_STAMP="$REPO/dist/.sources-sha256"
SOURCES_SHA="$(find azext_confcom bin setup.py setup.cfg README.md HISTORY.rst -type f \
    -not -path '*/tests/*' -not -name '*.pyc' -not -path '*/__pycache__/*' -print0 2>/dev/null \
    | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)"
if [ ! -f "$WHEEL_STAMP" ] || [ "$(cat "$WHEEL_STAMP")" != "$SOURCES_SHA" ] || ! ls dist/confcom-*.whl >/dev/null 2>&1; then
    say "building the wheel"
    rm -rf dist build ./*.egg-info
    mkdir -p dist
    if ! "$VENV/bin/python" -m build --wheel --no-isolation --outdir dist . >dist/build.log 2>&1; then
        cat dist/build.log >&2
        exit 1
    fi
    rm -f dist/build.log
    rm -rf build ./*.egg-info
    echo "$SOURCES_SHA" > "$WHEEL_STAMP"
fi
WHEEL="$(ls "$REPO"/dist/confcom-*.whl | head -n1)"

# 4. Install it the way every Azure CLI extension is installed.
INSTALLED="$AZURE_EXTENSION_DIR/confcom/$(basename "$WHEEL")"
if [ ! -f "$INSTALLED" ] || ! cmp -s "$INSTALLED" "$WHEEL"; then
    say "az extension add --source $(basename "$WHEEL")"
    "$VENV/bin/az" extension remove --name confcom >/dev/null 2>&1 || true
    "$VENV/bin/az" extension add --source "$WHEEL" --yes --only-show-errors
fi

# 5. The bundled sample: a generated image tar and a copy of the sample template.
mkdir -p samples/generated
[ -f samples/generated/hello.tar ] || "$VENV/bin/python" samples/make_sample_image.py samples/generated/hello.tar >/dev/null
cp samples/template.json samples/generated/template.json

# 6. The main job: write the policy into the template copy (prints the policy's sha256).
say "az confcom acipolicygen -a samples/generated/template.json --tar samples/generated/hello.tar --disable-stdio"
"$VENV/bin/az" confcom acipolicygen -a samples/generated/template.json \
    --tar samples/generated/hello.tar --disable-stdio
say "policy written into samples/generated/template.json; run scripts/az for more, e.g."
say "  scripts/az confcom acipolicygen -a samples/generated/template.json --print-existing-policy"
