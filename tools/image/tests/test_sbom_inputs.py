"""The host's half of the SBOM, on real .deb files made here with dpkg-deb: licences
read from the packages' copyright files (following a doc link into another
package), the model and its origin, and a clear error for a missing .deb."""

import array
import hashlib
import json
import os
import subprocess

import pytest

from inference import artifact
from tools.image import build, sbom_inputs
from tools.trust.errors import TrustError

DEP5 = """Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/

Files: *
Copyright: 2020 Someone
License: GPL-2+ or Artistic

Files: lib/*
Copyright: 2021 Someone Else
License: Expat
"""
WORKSPACE = f"""pypi_files(
    name = "toy_source",
    python_interpreter = PYTHON3,
    requirement = "toy-weights==1.2",
    sha256 = "{"cd" * 32}",
)
"""
SPEC = {
    "spec_version": build.SPEC_VERSION, "image_name": "modelship-toy",
    "handler": "services.toy.handler:ToyHandler", "served_name": "toy",
    "service": "//services/toy:server",
    "model": {"path": "models/toy/toy.model", "runfile": "ws/models/toy/toy.model",
              "file": "toy.model", "label": "//models/toy:model"},
    "release": {"path": "r.json", "runfile": "ws/r.json"}, "size_budget_mb": 60,
    "release_gate": "models.toy.gate:gate", "release_gate_library": "//models/toy:gate",
    "operating_point": {"path": "o.json", "runfile": "ws/o.json"},
    "requests": {"path": "q.json", "runfile": "ws/q.json"},
    "model_source": "pkg:pypi/toy-weights@1.2",
}


def _deb(folder, name, doc):
    """A .deb of `name` whose /usr/share/doc/<name> is `doc`: copyright text, or
    ('link', target)."""
    root = folder / f"{name}-root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN" / "control").write_text(
        f"Package: {name}\nVersion: 1.0-1\nArchitecture: amd64\nMaintainer: t <t@t>\n"
        f"Description: test\n", encoding="utf-8")
    docs = root / "usr" / "share" / "doc"
    docs.mkdir(parents=True)
    if isinstance(doc, tuple):
        os.symlink(doc[1], docs / name)
    else:
        (docs / name).mkdir()
        (docs / name / "copyright").write_text(doc, encoding="utf-8")
    deb = folder / "debs" / f"{name}_1.0-1_amd64.deb"
    deb.parent.mkdir(exist_ok=True)
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)],
                   check=True, stdout=subprocess.DEVNULL)
    with open(deb, "rb") as data:
        digest = hashlib.sha256(data.read()).hexdigest()
    return f"{name} 1:1.0-1 amd64 {digest} pool/main/t/{name}/{deb.name}\n"


@pytest.fixture(name="workspace")
def fixture_workspace(tmp_path):
    """A framework root holding a Debian lock of two real .debs, a WORKSPACE pinning
    the model's source, and a model artifact."""
    lock = _deb(tmp_path, "alpha", DEP5) + _deb(tmp_path, "beta", ("link", "alpha"))
    (tmp_path / "third_party" / "debian").mkdir(parents=True)
    (tmp_path / "third_party" / "debian" / "base.lock").write_text(lock, encoding="utf-8")
    (tmp_path / "WORKSPACE").write_text(WORKSPACE, encoding="utf-8")
    model = tmp_path / "toy.model"
    model.write_bytes(artifact.encode({"model": {"name": "toy-net"}},
                                      {"w": array.array("f", [1.0, 2.0])}))
    return tmp_path


def _prepare(workspace, spec=None):
    ctx = workspace / "ctx"
    path = sbom_inputs.prepare(
        str(ctx), framework=str(workspace), workspace=str(workspace),
        debs=str(workspace / "debs"), spec=build.parse_spec(spec or SPEC),
        model=str(workspace / "toy.model"), stamped=("f" * 40, 1_700_000_000,
                                                     "https://example.org/p"))
    with open(path, encoding="utf-8") as text:
        return json.load(text)


def test_debian_licences_come_from_the_debs_following_doc_links(workspace):
    debian = {p["name"]: p for p in _prepare(workspace)["debian"]}
    assert debian["alpha"]["license"] == "(Artistic-1.0 OR GPL-2.0-or-later) AND MIT" or \
        debian["alpha"]["license"] == "(GPL-2.0-or-later OR Artistic-1.0) AND MIT"
    assert debian["beta"]["license"] == debian["alpha"]["license"]
    assert debian["beta"]["version"] == "1:1.0-1" and len(debian["beta"]["sha256"]) == 64


def test_model_names_its_target_and_the_pinned_source(workspace):
    model = _prepare(workspace)["model"]
    with open(workspace / "toy.model", "rb") as data:
        assert model["sha256"] == hashlib.sha256(data.read()).hexdigest()
    assert (model["name"], model["file"], model["target"]) == (
        "toy-net", "toy.model", "//models/toy:model")
    assert model["source"] == {"name": "toy-weights", "version": "1.2",
                               "purl": "pkg:pypi/toy-weights@1.2", "sha256": "cd" * 32,
                               "repository": "@toy_source"}


def test_a_model_trained_here_has_no_source(workspace):
    spec = dict(SPEC, model_source="")
    assert _prepare(workspace, spec)["model"]["source"] == ""


def test_the_inputs_are_the_same_bytes_twice(workspace):
    assert _prepare(workspace) == _prepare(workspace)
    with open(workspace / "ctx" / "sbom" / "inputs.json", "rb") as first:
        before = first.read()
    _prepare(workspace)
    with open(workspace / "ctx" / "sbom" / "inputs.json", "rb") as second:
        assert second.read() == before


def test_a_missing_deb_is_an_error_naming_the_package(workspace):
    os.remove(workspace / "debs" / "beta_1.0-1_amd64.deb")
    with pytest.raises(TrustError, match=r"beta=1:1.0-1: .*beta_1.0-1_amd64.deb is missing"):
        _prepare(workspace)


def test_a_model_source_that_is_not_a_package_url_is_refused(workspace):
    with pytest.raises(TrustError, match="not a package URL"):
        _prepare(workspace, dict(SPEC, model_source="toy-weights==1.2"))
