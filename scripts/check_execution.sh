#!/usr/bin/env bash
# Fail, naming each chapter, if Jupyter Book saved an execution-error report while building.
# Without this, `jupyter-book build` (without -W) publishes a page with a traceback and exits 0.
set -euo pipefail
reports="${1:-_build/html/reports}"
failed=$(find "$reports" -name '*.err.log' 2>/dev/null | sort || true)
if [ -n "$failed" ]; then
  echo
  echo "error: these chapters failed to execute; their pages would show a traceback:"
  for log in $failed; do
    echo "  ${log#"$reports"/} (error report: $log)"
    # the exception line, without the terminal colours the report keeps
    sed 's/\x1b\[[0-9;]*m//g' "$log" | grep -E '^[A-Za-z_.]*(Error|Exception|Interrupt)[A-Za-z]*: ' | tail -1 \
      | sed 's/^/    /' || true
  done
  echo "Fix the chapter (or run it in Jupyter to see the failing cell), then run make book again."
  exit 1
fi
