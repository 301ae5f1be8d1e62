"""The production image, run as a user would run it, from the outside.

Builds the production image exactly as `bazel run //:image` does, loads the
OCI archive into a real container runtime (a dockerd the test starts), runs
it with a read-only root filesystem, and checks readiness, a prediction over
HTTP, the API docs and version, the user, the labels, the size budget, and
that it holds no shell, package manager or compiler.
"""

import importlib.util
import json
import os
import re
import shutil
import subprocess
import tarfile

import pytest

from tests.image import support
from tools.image import labels as image_labels

# Issue 5's target: at most 60 MB uncompressed, model and server included
# (57.9 MB on 2026-12-01; docs/benchmarks.md, "Production image", says where
# every megabyte goes). Declared in services/digits/BUILD (size_budget_mb); the
# build itself fails above it, and this checks the declaration reached it.
SIZE_BUDGET_BYTES = support.spec()["size_budget_mb"] * 1_000_000
# Where the dynamic loader of the image looks for libraries.
LIBRARY_DIRS = ("lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib64", "lib", "usr/lib")


@pytest.fixture(name="built", scope="module")
def fixture_built(tmp_path_factory):
    """(report, OCI archive path, what the build printed) of a production build."""
    out = str(tmp_path_factory.mktemp("dist"))
    # A private buildah storage: never touch the images of whoever else builds here.
    storage = str(tmp_path_factory.mktemp("storage"))
    output = []
    try:
        report = support.build_production(out, ["--storage", storage], output)
    finally:
        shutil.rmtree(storage, ignore_errors=True)  # half a GB; the archive is in `out`
    return report, os.path.join(out, support.IMAGE + ".oci.tar"), output[0]


@pytest.fixture(name="docker", scope="module")
def fixture_docker(built, tmp_path_factory):
    """A private dockerd with the built image loaded as modelship-digits:smoke."""
    _, archive, _ = built
    with support.dockerd() as daemon:
        daemon.load_oci_archive(archive, f"{support.IMAGE}:smoke",
                                str(tmp_path_factory.mktemp("load")))
        yield daemon


@pytest.fixture(name="container", scope="module")
def fixture_container(docker):
    """The service container, read-only root filesystem, ready; yields its port."""
    port = support.free_port()
    run = docker.docker("run", "--detach", "--network", "host", "--read-only",
                        "--env", f"MODELSHIP_PORT={port}", "--env", "MODELSHIP_HOST=127.0.0.1",
                        "--name", "smoke", f"{support.IMAGE}:smoke")
    assert run.stdout.strip()
    try:
        support.wait_until(lambda: support.http(port, "GET", "/v2/health/ready")[0] == 200,
                           60, "the container to report ready")
    except AssertionError:
        print(docker.docker("logs", "smoke", check=False).stdout)
        raise
    yield port


def test_the_build_shows_its_steps_and_no_tool_noise(built):
    printed = built[2]
    lines = printed.splitlines()
    steps = [line for line in lines if re.match(r"image: \[\w+\] step \d+/\d+: ", line)]
    assert any(line.startswith("image: [dev] step ") for line in steps), printed[-3000:]
    assert any(line.startswith("image: [production] step ") for line in steps)
    assert all(re.search(r" \(\d+(s|m\d\ds)\)$", line) for line in steps), steps
    # stderr is progress only (every line prefixed), stdout the report
    assert not re.search(r"src/main/tools/linux-sandbox[\w.-]*\.cc:\d+", printed)
    assert not any(line.startswith(("-->", "STEP ", "[")) for line in lines), printed[-3000:]
    assert "image: done in " in printed


def test_loaded_image_is_the_built_image(built, docker):
    report, _, _ = built
    image_id = docker.docker("image", "inspect", "--format", "{{.Id}}",
                             f"{support.IMAGE}:smoke").stdout.strip()
    assert image_id == report["config_digest"]


def test_container_becomes_ready_and_predicts_over_http(container, built):
    report, _, _ = built
    image = [0, 0, 5, 13, 9, 1, 0, 0, 0, 0, 13, 15, 10, 15, 5, 0, 0, 3, 15, 2, 0, 11, 8, 0,
             0, 4, 12, 0, 0, 8, 8, 0, 0, 5, 8, 0, 0, 9, 8, 0, 0, 4, 11, 0, 1, 12, 7, 0,
             0, 2, 14, 5, 10, 12, 0, 0, 0, 0, 6, 13, 10, 0, 0, 0]  # a "0" of the data set
    status, body = support.http(container, "POST", "/v1/predict",
                                {"instances": [image], "top_k": 1})
    assert status == 200, body
    assert body["model"]["version"] == report["labels"]["io.modelship.model.version"]
    assert body["predictions"][0]["label"] == "0"


def test_container_serves_the_api_docs_and_reports_the_api_version(container, built):
    report, _, _ = built
    with open("services/digits/openapi.json", encoding="utf-8") as text:
        api_version = json.load(text)["info"]["version"]
    assert report["labels"]["io.modelship.api.version"] == api_version
    status, server = support.http(container, "GET", "/v2")
    assert status == 200 and server["version"] == api_version, server
    status, page = support.http(container, "GET", "/docs")
    assert status == 200, page
    assert f"digits inference service {api_version} reference</title>" in page


def test_container_runs_as_nonroot(docker, container):
    del container
    user = docker.docker("inspect", "--format", "{{.Config.User}}", "smoke").stdout.strip()
    assert user == "65532:65532"
    top = docker.docker("top", "smoke", "-o", "pid,uid,cmd").stdout.splitlines()[1:]
    assert top and all(line.split()[1] == "65532" for line in top), top


@pytest.mark.parametrize("program", ["/bin/sh", "/bin/bash", "/usr/bin/apt-get",
                                     "/usr/bin/dpkg", "/usr/bin/pip", "/usr/bin/gcc"])
def test_image_has_no_shell_package_manager_or_compiler(docker, program):
    proc = docker.docker("run", "--rm", "--network", "none", "--entrypoint", program,
                         f"{support.IMAGE}:smoke", check=False)
    assert proc.returncode != 0
    assert "no such file or directory" in proc.stdout.lower() \
        or "executable file not found" in proc.stdout.lower(), proc.stdout


def test_image_labels_record_revision_and_model(built):
    labels = built[0]["labels"]
    for key in ("org.opencontainers.image.revision", "org.opencontainers.image.created",
                "org.opencontainers.image.source", "org.opencontainers.image.version",
                "org.opencontainers.image.title", "io.modelship.model.version",
                "io.modelship.model.name", "io.modelship.model.metric",
                "io.modelship.api.version"):
        assert key in labels, key
    assert len(labels["org.opencontainers.image.revision"]) == 40
    # The name clients call the model by, from the declaration's served_name, for deploy
    # tooling to read from the image; every label of ours is of its declared type.
    assert labels["io.modelship.model.served-name"] == "digits"
    assert not image_labels.type_problems(labels) and not image_labels.undeclared(labels)
    # the committed URL (tools/image/source-url.txt), never the clone's remote
    with open(os.path.join(support.workspace(), "tools/image/source-url.txt"),
              encoding="utf-8") as text:
        committed = [line.strip() for line in text if line.strip() and line[0] != "#"]
    assert [labels["org.opencontainers.image.source"]] == committed


def test_model_is_the_last_layer_but_the_sbom_s(built):
    # The model alone in its layer, and after it only the SBOM's small one (it names
    # the commit: last, so a code-only change does not push the model again).
    report = built[0]
    assert "/opt/modelship/model/" in report["history"][-2]
    assert report["layers"][-2]["uncompressed_size"] < 100_000
    assert "/var/lib/db/sbom/" in report["history"][-1]
    assert report["layers"][-1]["uncompressed_size"] < 1_000_000


def test_image_fits_the_size_budget(built):
    report = built[0]
    assert report["uncompressed_size"] <= SIZE_BUDGET_BYTES, (
        f"production image is {report['uncompressed_size'] / 1e6:.1f} MB uncompressed, "
        f"over the {SIZE_BUDGET_BYTES / 1e6:.0f} MB budget: {report['layers']}")


@pytest.fixture(name="rootfs", scope="module")
def fixture_rootfs(built, tmp_path_factory):
    """The image's file system, unpacked from the OCI archive layer by layer."""
    _, archive, _ = built
    root = tmp_path_factory.mktemp("rootfs")
    blobs = tmp_path_factory.mktemp("oci")
    with tarfile.open(archive) as oci:
        oci.extractall(blobs)  # our own archive (3.11.2 has no extraction filters)
    index = json.loads((blobs / "index.json").read_text())
    manifest = json.loads((blobs / "blobs" / "sha256" /
                           index["manifests"][0]["digest"].split(":")[1]).read_text())
    for layer in manifest["layers"]:
        with tarfile.open(blobs / "blobs" / "sha256" / layer["digest"].split(":")[1]) as tar:
            tar.extractall(root)
    return str(root)


def _resolve(root, name):
    """The library file `name` found in the image's library folders, or None."""
    for folder in LIBRARY_DIRS:
        path = os.path.join(root, folder, name)
        while os.path.islink(path):  # absolute links point inside the image
            target = os.readlink(path)
            path = (os.path.join(root, target.lstrip("/")) if os.path.isabs(target)
                    else os.path.join(os.path.dirname(path), target))
        if os.path.isfile(path):
            return path
    return None


def test_the_sbom_ships_in_both_formats_and_names_every_lock_entry_and_the_model(
        rootfs, built):
    folder = os.path.join(rootfs, "var/lib/db/sbom")
    assert sorted(os.listdir(folder)) == ["modelship-digits.cdx.json",
                                          "modelship-digits.spdx.json"]
    with open(os.path.join(folder, "modelship-digits.cdx.json"), encoding="utf-8") as text:
        bom = json.load(text)
    assert bom["metadata"]["component"]["version"] == \
        built[0]["labels"]["org.opencontainers.image.revision"]
    purls = {c.get("purl") for c in bom["components"]}
    with open(os.path.join(support.workspace(), "third_party/debian/base.lock"),
              encoding="utf-8") as lock:
        debs = [line.split()[0] for line in lock if line.strip() and line[0] != "#"]
    assert all(any(p and p.startswith(f"pkg:deb/debian/{name}@") for p in purls)
               for name in debs)
    models = [c for c in bom["components"] if c["type"] == "machine-learning-model"]
    assert [m["version"] for m in models] == [
        built[0]["labels"]["io.modelship.model.version"]]


def test_every_shared_library_an_elf_file_needs_is_in_the_image(rootfs):
    missing = []
    checked = 0
    for top, _, files in os.walk(rootfs):
        for name in files:
            path = os.path.join(top, name)
            if os.path.islink(path):
                continue
            with open(path, "rb") as handle:
                if handle.read(4) != b"\x7fELF":
                    continue
            checked += 1
            dynamic = subprocess.run(["readelf", "-d", path], stdout=subprocess.PIPE,
                                     text=True, check=True).stdout
            for line in dynamic.splitlines():
                if "(NEEDED)" in line:
                    lib = line.split("[", 1)[1].rstrip("]")
                    if _resolve(rootfs, lib) is None:
                        missing.append(f"{os.path.relpath(path, rootfs)} needs {lib}")
    assert checked > 30  # the interpreter, libc, extension modules, granian ...
    assert not missing, "pruned too much (third_party/debian/base.prune):\n" + "\n".join(missing)


def test_the_service_s_standard_library_modules_ship_compiled_and_no_others(rootfs):
    stdlib = os.path.join(rootfs, "usr/lib/python3.11")
    listing = os.path.join(support.workspace(), "tools/image/stdlib-modules.txt")
    with open(listing, encoding="utf-8") as handle:
        wanted = {line.strip() for line in handle if line.strip() and not line.startswith("#")}
    shipped = set()
    for top, _, files in os.walk(stdlib):
        for name in files:
            if name.endswith(".pyc"):
                shipped.add(os.path.relpath(os.path.join(top, name), stdlib))
    expected = set()
    for module in wanted:
        rel = module.replace(".", "/")
        for source in (rel + ".py", rel + "/__init__.py"):
            if os.path.isfile(os.path.join(stdlib, source)):
                expected.add(importlib.util.cache_from_source(source))
                break
    assert len(expected) > 100
    assert shipped == expected
