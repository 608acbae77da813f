# Sourced by the scripts: `ensure_venv [extras]` creates .venv on first use, installs the
# project (with the given extras, e.g. "dev") and puts .venv/bin first on PATH.
ensure_venv() {
  local root venv extras stamp
  root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
  venv="$root/.venv"
  extras="${1:-}"
  stamp="$venv/.installed${extras:+-$extras}"
  if [ ! -x "$venv/bin/python" ]; then
    echo "seoulchain: creating virtual environment in .venv" >&2
    python3 -m venv "$venv"
  fi
  if [ ! -f "$stamp" ] || [ "$root/pyproject.toml" -nt "$stamp" ]; then
    echo "seoulchain: installing dependencies${extras:+ ($extras)}" >&2
    "$venv/bin/python" -m pip install --quiet --upgrade pip >&2
    "$venv/bin/python" -m pip install --quiet -e "$root${extras:+[$extras]}" >&2
    touch "$stamp"
  fi
  export PATH="$venv/bin:$PATH"
}
