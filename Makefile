# The two commands of the README:
#   make demo   set up, train the default task on bundled real data, show the result
#   make test   set up, lint, run every test
.PHONY: setup demo test lint bench

setup:
	bash scripts/setup.sh

demo: setup
	.venv/bin/python examples/main_job.py

lint: setup
	.venv/bin/ruff check .
	.venv/bin/ruff format --check .

test: lint
	.venv/bin/python -m pytest -q -n 2 --dist loadgroup

bench: setup
	.venv/bin/python benchmarks/speed.py
