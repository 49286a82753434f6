#!/usr/bin/env bash
# Regenerate .ci/constraints.txt: install the project with its test extra into a fresh venv
# (the newest releases its ranges allow), run the checks there, and freeze what got installed.
# Review the diff and commit it only when `bash .ci/run` passes with it.
set -euo pipefail
cd "$(dirname "$0")/.."
venv="$(mktemp -d)/venv"
python3 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip setuptools wheel
"$venv/bin/python" -m pip install -q -e '.[test]'
out=.ci/constraints.txt
{
  sed -n '1,/^# Regenerate/p' "$out"
  "$venv/bin/python" -m pip freeze --all --exclude-editable | grep -vi '^sweeper' | LC_ALL=C sort -f
} > "$out.new"
mv "$out.new" "$out"
git --no-pager diff --stat -- "$out"
