#!/usr/bin/env bash
# Runs tools/relock in the source tree (bazel run sets BUILD_WORKSPACE_DIRECTORY).
set -euo pipefail
if [ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]; then
  echo "requirements.update: run me with 'bazel run //third_party/python:requirements.update'" >&2
  exit 2
fi
exec "$BUILD_WORKSPACE_DIRECTORY/tools/relock" "$@"
