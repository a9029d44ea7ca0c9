# The course's commands. Each does its own set-up first (idempotent: tools/setup.sh).
#   make course   execute every solution notebook (full size) into build/, write build/report.md
#   make lesson   the same at lesson size (what a learner gets: minutes per notebook) into build/lesson/
#   make lint     ruff over the package, tests, tools and solutions; generated files and the lock up to date
#   make test     lint, then the test suite (CI runs exactly this): package tests, every student notebook by
#                 Run All in JupyterLab (clicked in headless Chromium) and then its exercises' solutions in the
#                 same kernel, all at smoke size (MLCOURSE_SIZE=smoke)
#   make test-solutions  the solution notebooks whole, through nbval, at smoke size (after editing one)
#   make lab      open the course in JupyterLab, for one learner (IP=0.0.0.0 PORT=8888 to reach it from elsewhere)
#   make room     a workshop room: JupyterHub, one account and one copy of the course per learner
#                 (make room IP=0.0.0.0 PORT=8000 serves the room's network; PASSWORD=... the shared password)
#   make workshop prepare a room ahead of time, offline: data checked, slow models pre-trained and cached
#   make smoke    the course command at smoke size (tiny data, a few minutes): checks a set-up
#   make bench    time every notebook at SIZE (default lesson) and compare its verdicts with reference/
#   make notebooks  regenerate notebooks/ from solutions/ (after editing a solution)
PYTHON ?= python3
export PYTHON
# No MPLBACKEND here: kernels inherit it, and with Agg an executed notebook keeps no figure (STACK.md).
QUIET := TF_CPP_MIN_LOG_LEVEL=2
.PHONY: setup course lesson smoke bench test test-solutions lint lab room workshop notebooks

setup:
	@bash tools/setup.sh

course: setup
	$(QUIET) $(PYTHON) -m mlcourse.course

lesson: setup
	$(QUIET) $(PYTHON) -m mlcourse.course --size lesson --out build/lesson

smoke: setup
	$(QUIET) $(PYTHON) -m mlcourse.course --size smoke --out build/smoke

SIZE ?= lesson
bench: setup
	$(QUIET) $(PYTHON) -m mlcourse.benchmark --size $(SIZE)

lint: setup
	$(PYTHON) -m ruff check .
	$(PYTHON) -m mlcourse.notebooks generate --check
	$(PYTHON) -m mlcourse.catalog check
	$(PYTHON) -m mlcourse.lessons check
	$(PYTHON) tools/lock.py --check

PYTEST := MLCOURSE_SIZE=smoke TQDM_DISABLE=1 $(PYTHON) -m pytest -p no:randomly -rs --durations=10 -n 2 --dist loadfile
test: lint
	@bash tools/setup.sh --tests
	$(QUIET) $(PYTEST) tests

test-solutions: setup
	$(QUIET) $(PYTEST) solutions --nbval-lax --nbval-current-env --nbval-sanitize-with tests/nbval_sanitize.cfg \
		--nbval-cell-timeout=600

lab: setup
	$(PYTHON) -m mlcourse.workshop lab $(if $(IP),--ip $(IP)) $(if $(PORT),--port $(PORT))

room: setup
	$(PYTHON) -m mlcourse.workshop room $(if $(IP),--ip $(IP)) $(if $(PORT),--port $(PORT)) \
		$(if $(PASSWORD),--password $(PASSWORD))

workshop: setup
	$(QUIET) $(PYTHON) -m mlcourse.workshop prepare
	$(PYTHON) -m mlcourse.workshop check

notebooks:
	$(PYTHON) -m mlcourse.notebooks generate
