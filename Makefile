# ketaclinic: `make run` serves the demo clinic, `make test` runs the whole suite.
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
PG_URL ?= postgres://postgres@127.0.0.1:5432/ketaclinic_test
DEMO_PATIENTS ?= 200
OUTCOMES_PATIENTS ?= 100000
BACKUP_PATIENTS ?= 10000
XDIST ?= -n 2

.PHONY: run test test-pg lint bench bench-large install clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py collectstatic --noinput --verbosity 0
	$(BIN)/ketaclinic demo --patients $(DEMO_PATIENTS)
	@echo ""
	@echo "ketaclinic is starting on http://127.0.0.1:8000"
	@echo "  log in as 'prescriber' (or nurse, frontdesk, admin, compliance...) with password demo-clinic-2026"
	@echo "  authenticator code: $(BIN)/ketaclinic totp-code prescriber   (in a second terminal)"
	@echo ""
	KETACLINIC_DEMO_HINTS=1 $(BIN)/ketaclinic serve --port 8000

test: $(STAMP)
	$(BIN)/pytest $(XDIST)

test-pg: $(STAMP)
	DATABASE_URL=$(PG_URL) $(BIN)/pytest $(XDIST)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/python manage.py makemigrations --check --dry-run

bench: $(STAMP)
	$(BIN)/python -m bench.run
	$(BIN)/python -m bench.outcomes --patients $(OUTCOMES_PATIENTS) --no-fhir
	$(BIN)/python -m bench.fhir_export --patients $(OUTCOMES_PATIENTS)
	$(BIN)/python -m bench.scheduling
	$(BIN)/python -m bench.fhir_import --workers 2
	$(BIN)/python -m bench.backup --sizes $(BACKUP_PATIENTS)
	for db in $(LARGE_DATABASES); do \
		$(BIN)/python -m bench.fhir_search --database $$db --patients 10000 --clients 1 \
			--kinds include,revinclude,revinclude_provenance,history,transaction || exit 1; \
	done

# Generated clinics of 10,000 and 100,000 patients (bench/large.py: by SQL, minutes; kept under
# var/bench-large/ and reused), then FHIR search at 1 and 16 clients and the outcomes figures on
# each, SQLite and PostgreSQL (PG_URL's server; skipped when unreachable).
LARGE_SIZES ?= 10000 100000
LARGE_DATABASES ?= sqlite postgres
bench-large: $(STAMP)
	for db in $(LARGE_DATABASES); do for n in $(LARGE_SIZES); do \
		$(BIN)/python -m bench.large --database $$db --patients $$n || exit 1; \
		$(BIN)/python -m bench.fhir_search --database $$db --patients $$n || exit 1; \
	done; done
	$(BIN)/python -m bench.outcomes --databases $(shell echo $(LARGE_DATABASES) | tr ' ' ,) \
		--patients $(shell echo $(LARGE_SIZES) | tr ' ' ,) --no-fhir
	$(BIN)/python -m bench.fhir_export --databases $(shell echo $(LARGE_DATABASES) | tr ' ' ,) \
		--patients $(shell echo $(LARGE_SIZES) | tr ' ' ,)

clean:
	rm -rf $(VENV) var/*.sqlite3* var/static
