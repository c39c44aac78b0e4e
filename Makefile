# superglue_ros: two commands do everything on a fresh clone (no ROS install needed).
#   make demo   - set up the venv if missing, then run the main job
#   make test   - set up the venv if missing, then lint + run the test suite
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.superglue_ros_setup_done
OUT ?= out
# glibc otherwise hands Sinkhorn's large temporaries back to the OS and page-faults them in
# again on the next call (1+ s outliers at >= 1024 keypoints); measured in superglue-bench.
export MALLOC_MMAP_THRESHOLD_ ?= 33554432
export MALLOC_TRIM_THRESHOLD_ ?= 17179869184

# The real Jazzy launch, launch_ros and message_filters (not on PyPI) come from
# ../shared/ros_src when it is there, as in CI; without it their tests are skipped, saying why.
ROS_SRC ?= ../shared/ros_src

.PHONY: setup ros-src eval-deps demo demo-pair test lint clean

setup: $(STAMP)

$(STAMP): tools/setup_venv.sh requirements.txt superglue_ros_msgs/msg/*.msg superglue_ros_msgs/srv/*.srv \
		superglue_ros_msgs/CMakeLists.txt superglue_ros/setup.py
	FORCE=1 VENV=$(VENV) bash tools/setup_venv.sh

# The main job: replay the bundled TUM demo bag through the real nodes, report in $(OUT)/replay.
demo: setup
	$(VENV)/bin/superglue-replay --demo --out $(OUT)/replay
	@echo "replay report: $(OUT)/replay/report.md (report.json, PNG plots, correspondences_bag)"

# Match one bundled image pair (no ROS): a picture and a JSON summary in $(OUT)/demo.
demo-pair: setup
	$(VENV)/bin/superglue-demo --out $(OUT)/demo

# Idempotent (about 2 s once installed).
ros-src: setup
	@if [ -f "$(ROS_SRC)/install.sh" ]; then bash "$(ROS_SRC)/install.sh" "$(VENV)"; \
	else echo "[ros_src] $(ROS_SRC) not found: launch, launch_ros and message_filters are" \
	  "not installed; the tests that need them are skipped (pytest -ra lists them)"; fi

# Optional gtsam and evo (reference back-end, superglue-replay --backend); pip skips them in
# about a second once installed.
eval-deps: setup
	$(PY) -m pip install --quiet -r requirements-eval.txt

lint: setup
	$(PY) -m flake8 --config superglue_ros/setup.cfg superglue_ros

# The venv's bin/ on PATH, as if activated: test_colcon runs colcon from there.
test: setup ros-src eval-deps
	PATH="$(abspath $(VENV))/bin:$$PATH" $(PY) -m pytest -q -ra

clean:
	rm -rf build install log $(OUT)
