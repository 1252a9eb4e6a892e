# simsiam-bench: the two commands that do everything on a fresh Debian 12 machine are
#   make demo   — the main job on the embedded default
#   make test   — set-up, build and the whole test suite
SHELL := /bin/bash
APT_PACKAGES := libopenblas-dev liblinear-dev libsqlite3-dev libturbojpeg0-dev libpng-dev libssl-dev zlib1g-dev libopenmpi-dev openmpi-bin pkg-config dataset-fashion-mnist
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
SWIFT_FLAGS ?=

.PHONY: demo-all setup build release test test-fast demo bench clean

## Installs the Debian packages the project needs (skips what is present; `apt-get update` once if needed).
setup:
	@missing=""; for p in $(APT_PACKAGES); do \
	  dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "install ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "setup: installing$$missing"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends $$missing; \
	else echo "setup: all Debian packages present"; fi

build: setup
	swift build $(SWIFT_FLAGS)

release: setup
	swift build -c release $(SWIFT_FLAGS)

## Set-up, build and every test (Swift Testing + XCTest). Debian's python3-sklearn lets SVMAgreementTests compare
## `run voc-svm` with scripts/reference/voc_svm_sklearn.py (the test is skipped where scikit-learn is missing).
test: APT_PACKAGES += python3-sklearn
test: setup
	swift build --build-tests $(SWIFT_FLAGS)
	swift test --skip-build $(SWIFT_FLAGS)

## The fast loop: skips tests tagged .slow (they are disabled when SKIP_SLOW_TESTS is set).
test-fast: setup
	SKIP_SLOW_TESTS=1 swift test $(SWIFT_FLAGS)

## The main job on the embedded default (see README): `simsiam-bench quickstart` — the engine self-test, SimSiam
## pretraining of a narrow ResNet-18 on Fashion-MNIST (Debian's dataset-fashion-mnist), then VOC-style SVMs on
## generated scenes, the multi-head linear probe and kNN for the pretrained and the random-init backbone, the
## tables, a compare of the two and results/report.html. About 15 minutes on 2 cores; a re-run reuses what is done.
demo: release
	.build/release/simsiam-bench quickstart

## `make demo` plus the longer protocols on the embedded default: the FCN and Faster R-CNN miniatures on the scenes for
## both backbones, about 20 more minutes on 2 idle cores.
demo-all: release
	.build/release/simsiam-bench quickstart --all

## Engine vs PyTorch, side by side (needs `pip install torch==2.13.0+cpu`); see benchmarks/README.md.
bench: setup
	$(MAKE) -C benchmarks run

clean:
	rm -rf .build
