#!/usr/bin/env bash
# cnncourse developer and reader commands. Each one creates the virtual environment in
# .venv and installs requirements.txt into it when needed (again whenever requirements.txt
# or pyproject.toml change), so a fresh clone needs nothing but Python >= 3.11.
#
#   ./dev.sh book     build the HTML book, executing every notebook; prints where it landed
#   ./dev.sh test     the whole test suite: ruff, unit tests, book build with warnings as
#                     errors, and every notebook re-executed under nbval
#   ./dev.sh lab      open JupyterLab on the exercises
#   ./dev.sh bench    time every notebook (bench/notebooks.py)
#   ./dev.sh assign   regenerate exercises/ from solutions/
#   ./dev.sh publish [DIR]  build the book and write the publishable site to DIR (default
#                     _site): what .github/workflows/book.yml puts on GitHub Pages
#
# Environment: PYTHON (interpreter used to create the venv, default python3),
# CNNCOURSE_VENV (venv path, default .venv).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
ROOT="$(pwd)"
VENV="${CNNCOURSE_VENV:-$ROOT/.venv}"
PYTHON="${PYTHON:-python3}"
FASHION_DIR=/usr/share/datasets/fashion-mnist

say() { printf '\n==> %s\n' "$*"; }

ensure_env() {
  if [ ! -x "$VENV/bin/python" ]; then
    if ! "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
      echo "cnncourse needs Python >= 3.11; '$PYTHON' is $("$PYTHON" --version 2>&1)." >&2
      echo "Set PYTHON=/path/to/python3.11 and retry." >&2
      exit 2
    fi
    say "creating the virtual environment $VENV"
    "$PYTHON" -m venv "$VENV"
  fi
  local stamp="$VENV/.cnncourse-requirements" want
  want="$(cat requirements.txt pyproject.toml | sha256sum | cut -d' ' -f1)"
  if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    say "installing requirements.txt into $VENV (first run: a few minutes)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -r requirements.txt
    echo "$want" > "$stamp"
  fi
  # JupyterLab's defaults for this venv: no "Jupyter news" prompt and no update check on a
  # student's first screen (the venv's share/jupyter/lab/settings/overrides.json).
  mkdir -p "$VENV/share/jupyter/lab/settings"
  cmp -s scripts/jupyterlab_overrides.json "$VENV/share/jupyter/lab/settings/overrides.json" ||
    cp scripts/jupyterlab_overrides.json "$VENV/share/jupyter/lab/settings/overrides.json"
  export PATH="$VENV/bin:$PATH"
  export TF_CPP_MIN_LOG_LEVEL="${TF_CPP_MIN_LOG_LEVEL:-3}"  # C++ logs (cuInit noise) off
  export PYTHONHASHSEED=0
}

# apt_install WHY NOTE PACKAGE...: install Debian packages when this user can (root, or
# password-less sudo); otherwise print how to get them and go on. NOTE is printed where there
# is no apt-get at all. Sets SUDO to the prefix that worked, for follow-up commands.
apt_install() {
  local why="$1" note="$2"; shift 2
  SUDO=""
  if ! command -v apt-get >/dev/null 2>&1; then echo "note: $note" >&2; return 0; fi
  if [ "$(id -u)" -ne 0 ]; then
    if sudo -n true 2>/dev/null; then SUDO="sudo"; else
      echo "note: run 'sudo apt-get install $*' for $why." >&2
      return 0
    fi
  fi
  say "installing Debian's $* ($why)"
  $SUDO apt-get update -qq && $SUDO apt-get install -y -qq "$@" >/dev/null
}

ensure_data() {
  # Fashion-MNIST offline: Debian's dataset-fashion-mnist package. Installed when we can.
  [ -d "$FASHION_DIR" ] ||
    apt_install "offline Fashion-MNIST" \
      "no apt-get here; Fashion-MNIST will come from Keras (needs a network once)." \
      dataset-fashion-mnist
}

ensure_browser() {
  # Headless Chromium for the end-to-end tests: Debian's package, driven by Playwright.
  if [ -n "${CNNCOURSE_CHROMIUM:-}" ] || command -v chromium >/dev/null 2>&1; then return 0; fi
  apt_install "the headless browser of the end-to-end tests" \
    "install Chromium and set CNNCOURSE_CHROMIUM for the end-to-end tests." chromium
}

ensure_sandbox() {
  # bubblewrap: the sandbox every student job of `cnncourse grade` runs in (Debian's package,
  # the one Flatpak uses). Without it, grading stops unless --allow-unisolated.
  command -v bwrap >/dev/null 2>&1 ||
    apt_install "the grader's sandbox" "install bubblewrap (bwrap) for the grader's sandbox." \
      bubblewrap
}

ensure_slurm() {
  # Slurm and MUNGE for tests/test_slurm.py, which starts a one-node cluster of its own
  # (its own config, key and ports; nothing in /etc is used). Debian's packages.
  if command -v slurmd >/dev/null 2>&1 && command -v munged >/dev/null 2>&1; then return 0; fi
  apt_install "a one-node cluster for the Slurm test" \
    "install Slurm and MUNGE for the Slurm test (tests/test_slurm.py)." slurm-wlm munge
  if command -v slurmd >/dev/null 2>&1; then
    # The packages start system daemons with /etc's config; the test runs its own.
    $SUDO systemctl disable --now slurmd slurmctld munge >/dev/null 2>&1 || true
  fi
}

build_book() {
  say "building the book (executes every notebook; cached in _build/.jupyter_cache)"
  jupyter-book build . --warningiserror --keep-going --builder html
  echo
  echo "The book is at: $ROOT/_build/html/index.html"
}

publish_site() {
  # The built book (_build/html) as a self-contained static site in $1, ready for any web
  # server or GitHub Pages. Refuses to replace a folder it did not write.
  local site="$1"
  if [ -e "$site" ] && [ ! -e "$site/.cnncourse-site" ] && [ -n "$(ls -A "$site" 2>/dev/null)" ]; then
    echo "publish: $site exists and is not a site this command wrote; choose another folder" >&2
    exit 2
  fi
  [ -f _build/html/index.html ] || { echo "publish: no built book in _build/html" >&2; exit 2; }
  rm -rf "$site"; mkdir -p "$site"
  cp -a _build/html/. "$site/"
  touch "$site/.nojekyll" "$site/.cnncourse-site"   # served as is (folders starting with _)
  # A published page must not point into the machine that built it.
  if grep -rIl --include='*.html' -e "file://" -e "$ROOT/" "$site" >/dev/null; then
    echo "publish: pages refer to local files:" >&2
    grep -rIl --include='*.html' -e "file://" -e "$ROOT/" "$site" | head >&2
    exit 1
  fi
  echo "The publishable site is in $site ($(find "$site" -type f | wc -l) files); open $site/index.html"
}

cmd="${1:-}"
case "$cmd" in
  book)
    ensure_env; ensure_data; build_book ;;
  test)
    ensure_env; ensure_data; ensure_browser; ensure_slurm; ensure_sandbox
    say "ruff"
    ruff check .
    say "exercises/ generated from solutions/"
    cnncourse assign --check
    say "unit tests"
    MPLBACKEND=Agg python -m pytest tests   # no figure windows from the unit tests
    say "doctests: the Examples of every module's docstrings"
    MPLBACKEND=Agg python -m pytest -p no:cacheprovider --doctest-modules cnncourse
    build_book
    say "the publishable site (./dev.sh publish) from this build"
    publish_site "$(mktemp -d)/site"
    say "every notebook re-executed with nbval (outputs tagged nbval-check-output must reproduce)"
    notebooks="$(python scripts/executed_notebooks.py)"   # fails if the build skipped one
    # shellcheck disable=SC2086
    # The cell timeout is the book's (_config.yml): three times the 100-s cell budget.
    python -m pytest -p no:cacheprovider --nbval-lax --nbval-current-env \
      --nbval-cell-timeout="$(python -c 'import yaml; print(yaml.safe_load(open("_config.yml"))["execute"]["timeout"])')" \
      $notebooks
    say "end to end: the book in Chromium, the exercises in JupyterLab, the README's commands"
    python -m pytest tests/e2e
    ;;
  lab)
    ensure_env; ensure_data
    root_flag=""; [ "$(id -u)" -ne 0 ] || root_flag="--allow-root"
    # The repository is the root, so an exercise's link to its chapter (../chapters/) opens;
    # the file browser starts in exercises/.
    exec jupyter lab $root_flag --ServerApp.root_dir=. --LabApp.default_url=/lab/tree/exercises ;;
  bench)
    ensure_env; ensure_data
    shift; exec python bench/notebooks.py "$@" ;;
  assign)
    ensure_env; exec cnncourse assign ;;
  publish)
    ensure_env; ensure_data; build_book; publish_site "${2:-_site}" ;;
  *)
    sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//'
    [ -z "$cmd" ] || { echo "unknown command: $cmd" >&2; exit 2; } ;;
esac
