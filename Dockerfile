# The one image definition: base -> dev -> lint / test, and production.
#
# Built by `bazel run //:image` (tools/image/build.py), which prepares the
# build context from pinned, hash-checked inputs only and runs
#   buildah build --network none --timestamp $SOURCE_DATE_EPOCH --target <stage>
# so no step can reach the network and the same commit gives the same bytes.
# `docker build` also works on that context for local convenience, but only
# the buildah path is bit-for-bit reproducible.
#
# Context layout (made by tools/image/build.py):
#   rootfs/base.tar   runtime root filesystem from third_party/debian/base.lock
#   rootfs/dev.tar    compiler + headers + dash from third_party/debian/dev.lock
#   wheels/           every wheel of the Python locks, pip.whl among them
#   locks/            runtime.txt, imagedev.txt
#   model/            the model artifact (the image spec's `model`)
#   src/              the workspace sources the image needs
#   sbom/inputs.json  what the SBOM needs that only the host knows: the Debian
#                     packages of base.lock with their licences, the model's origin
#
# This file names no model: what differs between images comes from the image's
# spec (model_image, //modelship:defs.bzl) as build arguments:
#   MODEL_FILE         the model artifact's file name under /opt/modelship/model/
#   MODELSHIP_HANDLER  the handler class, package.module:Class (serving/README.md)
#   MODELSHIP_IMAGE_TESTS  the test folders the test stage runs (space-separated)
#   MODELSHIP_STDLIB_MODULES  the image's list of standard-library modules whose
#                      .pyc production ships (default: tools/image/stdlib-modules.txt)

# --- base: a minimal Debian root filesystem, no package manager, no shell ----
FROM scratch AS base
ADD rootfs/base.tar /
ENV LANG=C.UTF-8 \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONHASHSEED=0

# --- dev: compiler, all Python deps from the locks, model, then code ---------
FROM base AS dev
ADD rootfs/dev.tar /
# Hash-based .pyc (no embedded mtimes) for the whole standard library here;
# production takes only those of the modules the service imports.
RUN ["/usr/bin/python3", "-m", "compileall", "-q", "--invalidation-mode", "unchecked-hash", "/usr/lib/python3.11"]

COPY locks/ /opt/modelship/locks/
COPY wheels/ /opt/modelship/wheels/
RUN ["/usr/bin/python3", "/opt/modelship/wheels/pip.whl/pip", "install", "--quiet", "--no-index", "--find-links=/opt/modelship/wheels", "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile", "--disable-pip-version-check", "--root-user-action=ignore", "--target=/opt/modelship/site", "-r", "/opt/modelship/locks/runtime.txt"]
RUN ["/usr/bin/python3", "/opt/modelship/wheels/pip.whl/pip", "install", "--quiet", "--no-index", "--find-links=/opt/modelship/wheels", "--require-hashes", "--no-deps", "--only-binary=:all:", "--no-compile", "--disable-pip-version-check", "--root-user-action=ignore", "--target=/opt/modelship/devsite", "-r", "/opt/modelship/locks/imagedev.txt"]
ARG MODEL_FILE
ARG MODELSHIP_HANDLER
ENV PYTHONPATH=/opt/modelship/app:/opt/modelship/site:/opt/modelship/devsite \
    MODELSHIP_HANDLER=${MODELSHIP_HANDLER} \
    MODELSHIP_MODEL_PATH=/opt/modelship/model/${MODEL_FILE}
# The model changes less often than the code while developing: it goes first.
COPY model/ /opt/modelship/model/
COPY src/ /opt/modelship/app/
WORKDIR /opt/modelship/app
# finalize.py reads it (the spec's stdlib_modules) instead of --stdlib-modules when set.
ARG MODELSHIP_STDLIB_MODULES
RUN ["/usr/bin/python3", "tools/image/finalize.py", "--build-ext", "--app", "/opt/modelship/app", "--site", "/opt/modelship/site", "--stdlib-modules", "tools/image/stdlib-modules.txt"]
# The SBOM (SPDX and CycloneDX, tools/trust/sbom.py): the locks' entries checked against
# what is installed here (wheels, extension modules, the model), network off.
COPY sbom/ /opt/modelship/sbom-inputs/
RUN ["/usr/bin/python3", "tools/trust/sbom.py", "generate", "--inputs", "/opt/modelship/sbom-inputs/inputs.json", "--out", "/opt/modelship/release/sbom"]

# --- lint: the linters, inside the image, with the repository's config -------
FROM dev AS lint
RUN ["/usr/bin/python3", "tools/image/check.py", "lint"]

# --- test: the test suite, in the environment that ships ----------------------
FROM dev AS test
# The test folders of this image (the spec's `tests`): its service's, not every one's.
ARG MODELSHIP_IMAGE_TESTS
RUN ["/usr/bin/python3", "tools/image/check.py", "test"]

# --- production: interpreter, runtime deps, code, model, SBOM; nothing else ---
FROM base AS production
# .pyc of the standard-library modules the service imports (the spec's stdlib_modules).
COPY --from=dev /opt/modelship/release/stdlib/ /usr/lib/python3.11/
COPY --from=dev /opt/modelship/site/ /opt/modelship/site/
COPY --from=dev /opt/modelship/release/app/ /opt/modelship/app/
# The last large layer: a model-only change rebuilds and pushes it and the SBOM's.
COPY model/ /opt/modelship/model/
# The SBOM, a few hundred kB, after the model: it names the commit, so every change
# rewrites it, and a code-only change must not push the model layer again.
# /var/lib/db/sbom/ as apko/Chainguard images have it; the *.spdx.json and
# *.cdx.json names are what SBOM-aware scanners look for.
COPY --from=dev /opt/modelship/release/sbom/ /var/lib/db/sbom/
ARG MODEL_FILE
ARG MODELSHIP_HANDLER
ENV PYTHONPATH=/opt/modelship/app:/opt/modelship/site \
    MODELSHIP_HANDLER=${MODELSHIP_HANDLER} \
    MODELSHIP_MODEL_PATH=/opt/modelship/model/${MODEL_FILE} \
    MODELSHIP_HOST=0.0.0.0 \
    MODELSHIP_PORT=8080
USER 65532:65532
WORKDIR /home/nonroot
EXPOSE 8080
ENTRYPOINT ["/usr/bin/python3", "-m", "serving"]
