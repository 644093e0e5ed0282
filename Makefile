# Two commands on a fresh machine: `make run` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# Datumaro reads our exports in the tests from a venv of its own: it would replace our OpenCV and pandas.
TOOLS := .venv-tools
TOOLS_STAMP := $(TOOLS)/.installed
# These machines have no internet: point the weights search path at the shared checkpoints when present.
SHARED_WEIGHTS := $(abspath ../shared/weights)
ifneq ($(wildcard $(SHARED_WEIGHTS)),)
export YOLO_APP_WEIGHTS ?= $(SHARED_WEIGHTS)
endif
SHARED_VIDEO := $(abspath ../shared/videos/one-by-one-person-detection.mp4)

.PHONY: install tools run test test-fast bench bench-gui bench-grid bench-monitor bench-web bench-counts soak soak-file clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch and torchvision pinned together: other torchvision wheels do not import beside this torch.
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

tools: $(TOOLS_STAMP)

$(TOOLS_STAMP): tests/tools-requirements.txt
	test -x $(TOOLS)/bin/python || $(PYTHON) -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --upgrade pip
	$(TOOLS)/bin/python -m pip install --quiet -r tests/tools-requirements.txt
	touch $(TOOLS_STAMP)

# 30 minutes, 4 RTSP cameras dropped, stalled and restarted on a schedule, the webhook endpoint down for
# 5 minutes, storage past its cap: one table (see README "Soak").
soak: install
	$(BIN)/python tests/soak_faults.py --minutes 30

# 10 minutes on the looping person video, one camera, no faults: memory and events.
soak-file: install
	$(BIN)/python -m yolo_app.monitor.soak $(if $(wildcard $(SHARED_VIDEO)),$(SHARED_VIDEO),assets/demo.mp4) --seconds 600

# The window on the demo clip; where no window can open (no display, or Qt's system libraries missing: gui
# --check says which in one line), the headless annotate job instead.
run: install
	@if why=$$($(BIN)/yolo-app gui --check 2>&1); then \
		$(BIN)/yolo-app gui demo; \
	else \
		echo "$$why"; \
		echo "running the headless job (yolo-app annotate demo) instead of the window"; \
		$(BIN)/yolo-app annotate demo --out runs/demo; \
	fi

test: install tools
	YOLO_OFFLINE=true YOLO_AUTOINSTALL=false QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q --durations=15

test-fast: install tools
	YOLO_OFFLINE=true YOLO_AUTOINSTALL=false QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/yolo-app bench $(if $(wildcard $(SHARED_VIDEO)),$(SHARED_VIDEO),) --runs 3

# 10 minutes of looped playback in the real window (offscreen): display FPS, latency, memory growth.
bench-gui: install
	QT_QPA_PLATFORM=offscreen $(BIN)/python -m yolo_app.gui.soak $(if $(wildcard $(SHARED_VIDEO)),$(SHARED_VIDEO),) --seconds 600

# The grid view must stay live: display FPS for a minute without and a minute with the overlay, in real
# time (capped by the video's 10 fps) and as fast as possible (capped by inference).
bench-grid: install
	for speed in "" --fast; do for grid in "" --grid; do QT_QPA_PLATFORM=offscreen $(BIN)/python -m yolo_app.gui.soak \
		$(if $(wildcard $(SHARED_VIDEO)),$(SHARED_VIDEO),) --seconds 60 --warmup 10 $$speed $$grid; done; done

# How many 5-fps RTSP cameras (GStreamer's RTSP server, real footage) one model keeps up with here; the last
# line is one JSON object (see README "Capacity").
bench-monitor: install
	$(BIN)/python tests/bench_monitor.py --cameras 12 --seconds 60 --warmup 20

bench-web: install
	$(BIN)/python tests/bench_web.py --viewers 20 --seconds 60 --warmup 20

bench-counts: install
	YOLO_OFFLINE=true $(BIN)/python tests/bench_counts.py

clean:
	rm -rf runs .pytest_cache
