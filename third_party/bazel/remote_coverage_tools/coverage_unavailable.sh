#!/bin/sh
echo "coverage_report_generator: this is the offline stand-in for @remote_coverage_tools;" >&2
echo "combined coverage reports need the upstream archive (see third_party/bazel/README.md)." >&2
exit 1
