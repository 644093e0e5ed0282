# Two commands on a fresh machine: `make run` and `make test`. Both install into .venv when needed.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# These machines have no internet: point the weights search path at the shared checkpoints when present.
SHARED_WEIGHTS := $(abspath ../shared/weights)
ifneq ($(wildcard $(SHARED_WEIGHTS)),)
export YOLO_APP_WEIGHTS ?= $(SHARED_WEIGHTS)
endif
SHARED_VIDEO := $(abspath ../shared/videos/one-by-one-person-detection.mp4)

.PHONY: install run test test-fast bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch and torchvision pinned together: other torchvision wheels do not import beside this torch.
	$(BIN)/python -m pip install --quiet "torch==2.14.1" "torchvision==0.29.1"
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

run: install
	$(BIN)/yolo-app annotate demo --out runs/demo

test: install
	YOLO_OFFLINE=true YOLO_AUTOINSTALL=false QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q

test-fast: install
	YOLO_OFFLINE=true YOLO_AUTOINSTALL=false QT_QPA_PLATFORM=offscreen $(BIN)/python -m pytest -q -m "not slow"

bench: install
	$(BIN)/yolo-app bench $(if $(wildcard $(SHARED_VIDEO)),$(SHARED_VIDEO),) --runs 3

clean:
	rm -rf runs .pytest_cache
