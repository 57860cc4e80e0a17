.PHONY: setup demo test lab bench retrain-demo

setup:            ## create .venv and install probekit with its test tools
	bash scripts/setup.sh

demo:             ## set up, then run the demo on the embedded model (writes reports/demo/)
	bash scripts/demo.sh

test:             ## set up, then lint, type-check and run the whole test suite
	bash scripts/test.sh

lab: setup        ## open JupyterLab on the quickstart notebook
	.venv/bin/jupyter lab notebooks/

retrain-demo: setup  ## retrain the embedded demo model from its synthetic corpus
	.venv/bin/python scripts/train_demo.py
