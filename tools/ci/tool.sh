#!/usr/bin/env bash
# modelship-tool through Bazel, for any workspace that loads modelship's rules:
#
#   bazel run @modelship//tools/ci:tool -- <tool> [args...]     (a team's workspace)
#   bazel run //tools/ci:tool -- <tool> [args...]               (modelship itself)
#
# What the CI components' `tool` input is set to in a workspace that depends on
# modelship (examples/consumer/.gitlab-ci.yml): the jobs then need no copy of
# modelship's tools in the team's checkout; Bazel fetches modelship at the
# version the team's WORKSPACE pins, and this runs that version's
# modelship-tool from the root of the team's checkout. The image, repro and
# release tools are the workspace's own (`//:image`, `//:image.repro`,
# `$MODELSHIP_RELEASE_TARGET`); deploy, api_breaking and check_inputs are
# modelship's, named `@modelship//...` when this runs from another workspace.
#
# The first argument is filled in by the BUILD file: the repository this
# package belongs to (`@` in modelship, `@modelship` in a team's workspace).
set -euo pipefail

repo=${1:?tools/ci/tool.sh: the BUILD file passes the repository name first}
shift
# Bazel runs this as a link to the source file: modelship-tool is beside it.
here=$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")
if [ -z "${BUILD_WORKSPACE_DIRECTORY:-}" ]; then
  echo "tool: run it with bazel run @modelship//tools/ci:tool -- <tool> [args...]" >&2
  exit 2
fi
cd "$BUILD_WORKSPACE_DIRECTORY"
if [ "$repo" != "@" ]; then
  export MODELSHIP_REPO="$repo"
fi
exec "$here/modelship-tool" "$@"
