# Two entry points, each creates .venv when missing and installs with constraints.txt.
#   make demo   SynthTalk -> pretrain tiny -> evaluate -> runs/demo/report.md
#   make test   the CPU test suite
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test install bench clean

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e ".[test,faces,wav2vec]"
	$(BIN)/pip install -q -c constraints.txt --no-deps mediapipe==0.10.21
	$(BIN)/pip install -q -c constraints.txt "protobuf>=4.25.3,<5" absl-py attrs flatbuffers
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/synclipmae demo --out runs/demo $(ARGS)

test: $(STAMP)
	$(BIN)/python -m pytest tests $(ARGS)

bench: $(STAMP)
	$(BIN)/python benchmarks/bench_synth.py
	$(BIN)/python benchmarks/bench_train_step.py

clean:
	rm -rf $(VENV) runs .pytest_cache
