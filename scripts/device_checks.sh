#!/usr/bin/env bash
# The checks that need a GPU (bench/device.py), prepared to run in one call on a lent device machine.
#
# That machine has Python 3.12 with torch, numpy, scipy, scikit-learn, pillow and safetensors, no package
# index, and not the engine's other needs. So, here, once per session (the wheels folder is ignored):
#
#     scripts/device_checks.sh --fetch-wheels
#
# then one device call, naming the revision measured (the copy there has no git):
#
#     run(command="bash scripts/device_checks.sh $(git rev-parse --short HEAD)", carry=[".whl"], timeout_s=480)
#
# with the revision spelled out, since the command runs there. It writes $OUT/device.json; copy it here to
# bench/results/device.json and run `python -m bench report`. It takes about three minutes on an H100.
set -euo pipefail
cd "$(dirname "$0")/.."

WHEELS=.whl
# The engine's needs that the device image lacks, at the versions constraints.txt pins.
NEEDS=(pydantic pydantic_core annotated-types typing-inspection POT)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    mkdir -p "$WHEELS"
    for name in "${NEEDS[@]}"; do
        pin=$(grep -i -E "^${name}==" constraints.txt)
        python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
            --platform manylinux2014_x86_64 -d "$WHEELS" "$pin"
    done
    ls "$WHEELS"
    exit 0
fi

revision=${1:?the revision measured, e.g. \$(git rev-parse --short HEAD) spelled out}
out=${OUT:?OUT is the device tool\'s folder for files to bring back}
python3 -m pip install --quiet --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site "$WHEELS"/*.whl
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
python3 -m bench.device --out "$out" --revision "$revision" 2>&1 | tee "$out/device.log"
