#!/usr/bin/env bash
# Print the path of a Python >= 3.12 interpreter, or explain how to get one and fail.
set -u
candidates=()
if command -v pyenv >/dev/null 2>&1; then
  # .python-version selects the pyenv version; `pyenv which` resolves it.
  p=$(pyenv which python 2>/dev/null) && candidates+=("$p")
  for v in $(pyenv versions --bare 2>/dev/null | sort -rV); do
    candidates+=("$(pyenv root)/versions/$v/bin/python")
  done
fi
for name in python3.14 python3.13 python3.12 python3 python; do
  p=$(command -v "$name" 2>/dev/null) && candidates+=("$p")
done
for p in "${candidates[@]}"; do
  [ -x "$p" ] || continue
  if "$p" -c 'import sys, venv; sys.exit(0 if sys.version_info >= (3, 12) else 1)' 2>/dev/null; then
    echo "$p"; exit 0
  fi
done
echo "Omni needs Python 3.12 or newer. Install it (for example 'pyenv install 3.12') and run make again." >&2
exit 1
