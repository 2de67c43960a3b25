# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install translations bench audit clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP) translations

translations: $(STAMP)
	@for dir in translations/*/; do $(BIN)/pybabel -q compile -d $$dir || exit 1; done

run: install
	$(BIN)/flask init-db
	$(BIN)/flask demo --if-empty
	$(BIN)/flask run --host 127.0.0.1 --port 5000

test: install
	$(BIN)/python -m pytest $(PYTEST_ARGS)

bench: install
	$(BIN)/python -m bench

# Known vulnerabilities in the pinned requirements (PyPI's advisory data; --strict: a package that
# cannot be checked is a failure, not a silent pass). Needs network access to the advisory service.
audit: $(STAMP)
	$(BIN)/pip-audit --strict --progress-spinner off --vulnerability-service $(or $(AUDIT_SERVICE),pypi) \
		-r requirements.txt -r requirements-dev.txt

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
