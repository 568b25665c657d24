# Shared by scripts/test and scripts/demo (sourced, not run): the project's .venv.
#   step TEXT        print a step header
#   ensure_venv EXTRA  create .venv if missing and install the project with [EXTRA] (dev or local)
# Set PYTHON to choose the interpreter that creates .venv (default: python3, 3.11 or newer).

step() {
    printf '\n==> %s\n' "$*"
}

ensure_venv() {
    local extra="$1"
    local stamp=.venv/.dynamodm-installed
    local python="${PYTHON:-python3}"

    if [ ! -x .venv/bin/python ]; then
        step "creating .venv with $python"
        if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            echo "dynamodm needs Python 3.11 or newer; '$python' is not (set PYTHON=...)" >&2
            return 1
        fi
        "$python" -m venv --clear .venv
    fi

    # The stamp lists the extras installed since pyproject.toml last changed; dev includes local.
    if [ "$stamp" -nt pyproject.toml ] && grep -qxE "$extra|dev" "$stamp"; then
        return 0
    fi
    step "installing dynamodm[$extra] into .venv"
    .venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".[$extra]"
    if [ "$stamp" -nt pyproject.toml ]; then
        echo "$extra" >>"$stamp"
    else
        echo "$extra" >"$stamp"
    fi
}
