.PHONY: setup demo test test-fast lab docs bench retrain-demo

# Jupyter refuses to start as root (containers, CI) without this flag.
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

setup:            ## create .venv and install probekit with its test tools
	bash scripts/setup.sh

demo:             ## set up, then run the demo on the embedded model (writes reports/demo/)
	bash scripts/demo.sh

test:             ## set up, then lint, type-check and run the whole test suite
	bash scripts/test.sh

test-fast:        ## set up, then run the unit tests only (no slow or notebook tests, no lint)
	bash scripts/test.sh --fast

lab: setup        ## open JupyterLab on the quickstart notebook
	.venv/bin/jupyter lab notebooks/ $(ROOT_FLAG)

docs: setup       ## serve the documentation site at http://127.0.0.1:8000, rebuilt on every change
	.venv/bin/mkdocs serve -a 127.0.0.1:8000

retrain-demo: setup  ## retrain the embedded demo model from its synthetic corpus
	.venv/bin/python scripts/train_demo.py
