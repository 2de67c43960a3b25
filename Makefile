# Two commands set everything up: `make run` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test install translations bench audit clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip setuptools
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

# Known vulnerabilities in the pinned requirements. pip-audit asks a vulnerability service
# (--strict: a package that cannot be checked is a failure, not a silent pass). When no service
# answers (no network), the check falls back to .ci/advisories.json, a dated snapshot of
# pypa/advisory-database, and says so; see docs/reliability.md, "Known vulnerabilities".
AUDIT_SERVICE ?= pypi
audit: $(STAMP)
	@if $(BIN)/python .ci/audit_offline.py --probe $(AUDIT_SERVICE) -r requirements.txt; then \
		$(BIN)/pip-audit --strict --progress-spinner off --vulnerability-service $(AUDIT_SERVICE) \
			-r requirements.txt -r requirements-dev.txt; \
	else \
		echo "************************************************************************"; \
		echo "* pip-audit: the '$(AUDIT_SERVICE)' vulnerability service does not answer (no network?)."; \
		echo "* Falling back to the OFFLINE snapshot of pypa/advisory-database"; \
		echo "* read on $$($(BIN)/python -c 'import json; print(json.load(open(".ci/advisories.json"))["read_on"])')."; \
		echo "************************************************************************"; \
		$(BIN)/python .ci/audit_offline.py -r requirements.txt -r requirements-dev.txt; \
	fi

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis
