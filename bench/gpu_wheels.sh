#!/usr/bin/env bash
# Prepares .gpu-carry/, the one folder that bench/gpu.sh needs carried to the rented GPU machine (docs/benchmarks.md,
# "GPU script"). Run it HERE, from any folder, before the device call:
#
#   bash bench/gpu_wheels.sh
#
# - .gpu-carry/wheels: the wheels of what the GPU machine's image lacks (pip download --no-deps, versions from
#   constraints.txt, else the version installed in .venv, built for the image's CPython 3.12 on x86-64 Linux):
#   pyzmq, lap, ultralytics and ultralytics-thop, openvino and openvino-telemetry (the detector runs the shared
#   OpenVINO export there). torch, torchvision, numpy, opencv, onnx, onnxscript, onnxruntime, scipy, matplotlib,
#   prometheus_client, tqdm, scikit-learn, pyyaml, nvidia-ml-py are in that image and stay out. ultralytics'
#   polars and ultralytics-platform stay out too: ultralytics imports them lazily, on paths the pipeline never takes.
# - .gpu-carry/assets: the shared test pair and the YOLO11n OpenVINO export (../shared does not travel).
#
# Fails (exit 1) when the wheels pass 60 MiB or the whole working tree that travels passes the device's 64 MiB.
set -euo pipefail
cd "$(dirname "$0")/.."

CARRY=.gpu-carry
WHEELS="$CARRY/wheels"
ASSETS_SRC="${DUALGAIT_ASSETS:-$(cd .. && pwd)/shared/assets}"
PIP="${PIP:-.venv/bin/pip}"
PY="${PY:-.venv/bin/python}"
WHEELS_LIMIT_MIB=60
TREE_LIMIT_MIB=64
# the device image's python (KINDS.md: Python 3.12.3 on x86-64)
TARGET_PY=3.12
PLATFORMS=(manylinux_2_28_x86_64 manylinux_2_27_x86_64 manylinux_2_17_x86_64 manylinux2014_x86_64
           manylinux1_x86_64)
# pinned by constraints.txt (-c)
PINNED=(pyzmq lap ultralytics openvino)
# not in constraints.txt: the version this checkout's venv has (the one its tests ran with)
UNPINNED=(ultralytics-thop openvino-telemetry)

die() { echo "gpu_wheels: error: $*" >&2; exit 1; }

[[ -x "$PIP" ]] || die "no $PIP: make the dev venv first (README.md, 'Set-up')"
for name in "${PINNED[@]}"; do
  grep -Eiq "^${name}==" constraints.txt || die "constraints.txt pins no $name"
done
specs=("${PINNED[@]}")
for name in "${UNPINNED[@]}"; do
  version=$("$PY" -c "import importlib.metadata as m, sys; print(m.version(sys.argv[1]))" "$name") \
    || die "$name is not installed in .venv, so there is no tested version to pin"
  specs+=("$name==$version")
done

rm -rf "$WHEELS"
mkdir -p "$WHEELS"
platform_args=()
for p in "${PLATFORMS[@]}"; do platform_args+=(--platform "$p"); done
echo "gpu_wheels: downloading ${specs[*]} for CPython $TARGET_PY x86-64 into $WHEELS"
"$PIP" download -q --no-deps --only-binary=:all: --python-version "$TARGET_PY" --implementation cp \
  "${platform_args[@]}" -c constraints.txt -d "$WHEELS" "${specs[@]}"

# exactly one wheel per package: two versions of one stop the whole install there
count=$(find "$WHEELS" -name '*.whl' | wc -l)
[[ "$count" -eq "${#specs[@]}" ]] || die "expected ${#specs[@]} wheels, got $count: $(ls "$WHEELS")"

# openvino's wheel is 56 MiB, too much to travel with the rest: the GPU machine runs the detector on OpenVINO's
# CPU plugin only, so its Intel GPU and NPU plugins (18 MiB) and the C/C++ headers come out, and RECORD with them.
# Without those plugin files Core().available_devices is ["CPU"], so Ultralytics compiles for "CPU".
"$PY" - "$WHEELS"/openvino-*.whl <<'EOF'
import sys
import zipfile
from pathlib import Path

DROP_FILES = ("openvino/libs/libopenvino_intel_gpu_plugin.so", "openvino/libs/libopenvino_intel_npu_plugin.so")
DROP_PREFIXES = ("openvino/include/",)


def dropped(name: str) -> bool:
    return name in DROP_FILES or name.startswith(DROP_PREFIXES)


wheel = Path(sys.argv[1])
trimmed = wheel.with_suffix(".trim")
with zipfile.ZipFile(wheel) as src, zipfile.ZipFile(trimmed, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as dst:
    names = src.namelist()
    missing = [n for n in DROP_FILES if n not in names]
    if missing:
        sys.exit(f"gpu_wheels: error: {wheel.name} has no {', '.join(missing)}: check what to trim")
    for info in src.infolist():
        if dropped(info.filename):
            continue
        data = src.read(info)
        if info.filename.endswith(".dist-info/RECORD"):
            lines = data.decode().splitlines(keepends=True)
            data = "".join(ln for ln in lines if not dropped(ln.split(",", 1)[0])).encode()
        dst.writestr(info, data, compress_type=zipfile.ZIP_DEFLATED, compresslevel=9)
trimmed.replace(wheel)
EOF

rm -rf "$CARRY/assets"
mkdir -p "$CARRY/assets/videos" "$CARRY/assets/weights"
for view in front side; do
  src="$ASSETS_SRC/videos/walk_$view.mp4"
  [[ -f "$src" ]] || die "missing $src (set DUALGAIT_ASSETS)"
  cp "$src" "$CARRY/assets/videos/"
done
[[ -f "$ASSETS_SRC/weights/yolo11n_int8_openvino_model/yolo11n.xml" ]] \
  || die "missing $ASSETS_SRC/weights/yolo11n_int8_openvino_model (set DUALGAIT_ASSETS)"
cp -r "$ASSETS_SRC/weights/yolo11n_int8_openvino_model" "$CARRY/assets/weights/"
chmod -R u+w "$CARRY/assets"  # the shared copy is read-only

git check-ignore -q "$CARRY" || die "$CARRY is not ignored by git: add it to .gitignore (it must travel as a carry)"

mib() { awk -v b="$1" 'BEGIN { printf "%.1f", b / 1048576 }'; }
wheels_b=$(du -cb "$WHEELS"/*.whl | tail -1 | cut -f1)
assets_b=$(du -sb "$CARRY/assets" | cut -f1)
# what travels besides the carry: tracked files and untracked files that git does not ignore
tree_b=$(git ls-files -z --cached --others --exclude-standard | xargs -0 -r du -cb 2>/dev/null | awk '$2 == "total" { s += $1 } END { print s + 0 }')
total_b=$((wheels_b + assets_b + tree_b))
echo "gpu_wheels: wheels:"
for whl in "$WHEELS"/*.whl; do
  printf '  %8s MiB  %s\n' "$(mib "$(stat -c %s "$whl")")" "$(basename "$whl")"
done
echo "gpu_wheels: wheels $(mib "$wheels_b") MiB (limit $WHEELS_LIMIT_MIB), assets $(mib "$assets_b") MiB," \
     "working tree $(mib "$tree_b") MiB: $(mib "$total_b") MiB travel (device limit $TREE_LIMIT_MIB)"
(( wheels_b <= WHEELS_LIMIT_MIB * 1048576 )) || die "the wheels take $(mib "$wheels_b") MiB, over $WHEELS_LIMIT_MIB MiB"
(( total_b <= TREE_LIMIT_MIB * 1048576 )) || die "$(mib "$total_b") MiB would travel, over the device's $TREE_LIMIT_MIB MiB"
echo "gpu_wheels: ready; carry [\"$CARRY\"] and run bash bench/gpu.sh there"
