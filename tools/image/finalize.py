"""Runs inside the image's dev stage: build the extension, settle the files.

    python3 tools/image/finalize.py --build-ext --app /opt/modelship/app --site DIR

1. Builds every Cython module of the production packages against the
   image's own interpreter (Cython from the locks, the image's gcc), with
   workspace-relative paths so no build folder leaks into the output.
2. Removes pip's install records (RECORD, INSTALLER, REQUESTED,
   direct_url.json) and console scripts: noise that differs by installer;
   strips debug symbols from shared objects (uvloop's wheel ships 13 MB of
   them around 1.6 MB of code).
3. Compiles every module to hash-based .pyc (no embedded mtimes).
4. Copies what production runs into /opt/modelship/release/app: the
   production packages, without tests, sources of extensions (.pyx, .pxd, .c
   and the C headers they include) or BUILD files.
5. With --stdlib-modules LIST: hash-based .pyc of just the standard-library
   modules LIST names (the ones the service imports) into
   /opt/modelship/release/stdlib, laid out as under /usr/lib/python3.11.
"""

import argparse
import compileall
import glob
import importlib.util
import os
import py_compile
import shutil
import subprocess
import sys
import sysconfig

# Run as a script from the repository root in the image's dev stage: the
# repository's own modules (shipped by tools/image/build.py) import from there.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
from tools.cython import flags  # noqa: E402  pylint: disable=wrong-import-position

PRODUCTION_PACKAGES = ("inference", "serving", "services")
# Single modules production imports from otherwise build-time packages: each
# model's paths module (a handler finds its default artifact through it).
# Patterns, so that no model is named here.
PRODUCTION_FILES = ("models/__init__.py", "models/*/__init__.py", "models/*/paths.py")
RELEASE = "/opt/modelship/release/app"
STDLIB_RELEASE = "/opt/modelship/release/stdlib"
PIP_NOISE = ("RECORD", "INSTALLER", "REQUESTED", "direct_url.json")
# releases/: the API contracts of past releases, read by the breaking-change
# gate (tools/api), never by the service.
NOT_SHIPPED = ("tests", "__pycache__", "releases")


def build_extensions(app):
    """Cythonizes and compiles each .pyx of the production packages in place."""
    from Cython.Compiler import Main  # pylint: disable=import-outside-toplevel
    include = sysconfig.get_paths()["include"]
    for package in PRODUCTION_PACKAGES:
        for folder, _, files in sorted(os.walk(os.path.join(app, package))):
            for name in sorted(f for f in files if f.endswith(".pyx")):
                pyx = os.path.relpath(os.path.join(folder, name), app)
                c_file = pyx[:-4] + ".c"
                options = Main.CompilationOptions(Main.default_options, output_file=c_file,
                                                  language_level=3, timestamps=False)
                if Main.compile(pyx, options).num_errors:
                    raise SystemExit(f"finalize: Cython failed on {pyx}")
                subprocess.run(gcc_command(app, include, c_file), cwd=app, check=True)
                print(f"finalize: built {pyx[:-4]}.so")


def gcc_command(app, include, c_file):
    """The compile and link of one generated C file: the flags Bazel uses
    (tools/cython/flags.bzl), a shared object, no build folder in the output."""
    return (["gcc", "-shared", "-fPIC", *flags.COPTS, f"-ffile-prefix-map={app}=.",
             f"-I{include}", "-o", c_file[:-2] + ".so", c_file])


def remove_pip_noise(site):
    """Drops per-install records and scripts from a --target site folder."""
    shutil.rmtree(os.path.join(site, "bin"), ignore_errors=True)
    for entry in os.listdir(site):
        if entry.endswith(".dist-info"):
            for noise in PIP_NOISE:
                path = os.path.join(site, entry, noise)
                if os.path.exists(path):
                    os.remove(path)


def strip_shared_objects(folder):
    """`strip --strip-unneeded` on every shared object below `folder`."""
    objects = sorted(os.path.join(top, name) for top, _, files in os.walk(folder)
                     for name in files if name.endswith(".so") or ".so." in name)
    if objects:
        subprocess.run(["strip", "--strip-unneeded"] + objects, check=True)


def compile_tree(folder):
    """Hash-based .pyc for every module below `folder` (one process: stable output)."""
    ok = compileall.compile_dir(
        folder, quiet=1, workers=1,
        invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    if not ok:
        raise SystemExit(f"finalize: compiling {folder} failed")


def production_files(app):
    """The files PRODUCTION_FILES matches under `app`, relative to it, sorted."""
    found = set()
    for pattern in PRODUCTION_FILES:
        found.update(os.path.relpath(path, app) for path in glob.glob(os.path.join(app, pattern)))
    return sorted(found)


def release_copy(app):
    """Copies the production packages to RELEASE, leaving out what does not ship."""
    shutil.rmtree(RELEASE, ignore_errors=True)
    for package in PRODUCTION_PACKAGES:
        def ignore(folder, names):
            del folder
            return [n for n in names
                    if n in NOT_SHIPPED or n == "BUILD"
                    or n.endswith((".pyx", ".c", ".h", ".pxd", ".md", ".bzl"))]
        shutil.copytree(os.path.join(app, package), os.path.join(RELEASE, package),
                        ignore=ignore)
    for path in production_files(app):
        os.makedirs(os.path.dirname(os.path.join(RELEASE, path)), exist_ok=True)
        shutil.copyfile(os.path.join(app, path), os.path.join(RELEASE, path))
    compile_tree(RELEASE)


def stdlib_pyc(listing, out=STDLIB_RELEASE):
    """Compiles the listed standard-library modules into `out` (same relative layout)."""
    stdlib = sysconfig.get_paths()["stdlib"]
    with open(listing, encoding="utf-8") as handle:
        names = [line.strip() for line in handle if line.strip() and not line.startswith("#")]
    shutil.rmtree(out, ignore_errors=True)
    for name in names:
        rel = name.replace(".", os.sep)
        sources = [p for p in (rel + ".py", os.path.join(rel, "__init__.py"))
                   if os.path.isfile(os.path.join(stdlib, p))]
        if not sources:
            # Listed on another machine but pruned or built in here: nothing to ship.
            continue
        source = os.path.join(stdlib, sources[0])
        cached = importlib.util.cache_from_source(source)
        py_compile.compile(source, cfile=os.path.join(out, os.path.relpath(cached, stdlib)),
                           dfile=source, doraise=True,
                           invalidation_mode=py_compile.PycInvalidationMode.UNCHECKED_HASH)
    print(f"finalize: {len(names)} standard-library modules compiled for production")


def main(argv=None):
    """Entry point."""
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", required=True)
    parser.add_argument("--site", action="append", default=[])
    parser.add_argument("--build-ext", action="store_true")
    parser.add_argument("--stdlib-modules", metavar="LIST",
                        help="standard-library modules whose .pyc production ships; the "
                        "file MODELSHIP_STDLIB_MODULES names instead when set (the image "
                        "spec's own list, a build argument)")
    args = parser.parse_args(argv)
    if args.build_ext:
        build_extensions(args.app)
    for site in args.site:
        remove_pip_noise(site)
        strip_shared_objects(site)
        compile_tree(site)
    strip_shared_objects(args.app)
    compile_tree(args.app)
    release_copy(args.app)
    listing = os.environ.get("MODELSHIP_STDLIB_MODULES") or args.stdlib_modules
    if listing:
        stdlib_pyc(listing)
    return 0


if __name__ == "__main__":
    sys.exit(main())
