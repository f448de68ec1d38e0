# The two commands of the README:
#   make demo   set up, train the default task on bundled real data, show the result
#   make test   set up, lint, run every test
.PHONY: setup demo test lint bench docs docs-serve

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

# The docs site (docs/, mkdocs.yml) into site/, warnings as errors; tests/test_docs.py builds it the same way.
docs: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs build --strict

docs-serve: setup
	NO_MKDOCS_2_WARNING=1 .venv/bin/python -m mkdocs serve --dev-addr 127.0.0.1:8000
