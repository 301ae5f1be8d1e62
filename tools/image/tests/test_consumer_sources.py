"""An image built from another workspace (examples/consumer): its sources are its
own plus modelship's runtime, and its runtime lock is modelship's plus its own."""

import os
import subprocess

import pytest

from tools.image import build

LOCK = f"""\
click==8.5.1 \\
    --hash=sha256:{"a" * 64}
orjson==3.13.0 \\
    --hash=sha256:{"b" * 64}
"""


def _write(root, rel, text="x = 1\n"):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as out:
        out.write(text)


def _git_repo(root, files):
    for rel in files:
        _write(str(root), rel)
    subprocess.run(["git", "init", "-q", str(root)], check=True)
    subprocess.run(["git", "-C", str(root), "add", "-A"], check=True)


def test_modelship_itself_takes_everything_from_its_own_tree(tmp_path):
    files = [build.MODELSHIP_MARKER, "serving/app.py", "services/toy/handler.py",
             "inference/tests/test_x.py", "setup.cfg", "docs/not_shipped.md"]
    _git_repo(tmp_path, files)
    assert build.framework_root(str(tmp_path)) == str(tmp_path)
    shipped = [rel for _, rel in build.source_files(str(tmp_path))]
    assert shipped == sorted(set(files) - {build.MODELSHIP_MARKER, "docs/not_shipped.md"})


def test_a_consumer_takes_its_own_dirs_and_modelships_runtime_without_its_tests(tmp_path):
    consumer = tmp_path / "team"
    _git_repo(consumer, ["services/team/handler.py", "services/team/tests/test_h.py",
                         "models/team/train.py", "serving/ours_is_ignored.py", "WORKSPACE"])
    assert build.framework_root(str(consumer)) == build.MODELSHIP
    shipped = dict((rel, src) for src, rel in build.source_files(str(consumer)))
    # Its own: services and models (with its tests, which the image's test stage runs).
    own_test = "services/team/tests/test_h.py"
    assert shipped[own_test] == str(consumer / own_test)
    assert "models/team/train.py" in shipped
    # modelship's runtime, from modelship: the consumer's serving/ does not count.
    assert "serving/ours_is_ignored.py" not in shipped
    assert shipped["serving/app.py"] == os.path.join(build.MODELSHIP, "serving/app.py")
    assert "tools/image/check.py" in shipped and "tools/check_settings.py" in shipped
    assert not [rel for rel in shipped if rel.startswith(("serving/", "inference/"))
                and "/tests/" in rel]
    # None of modelship's own example models or services.
    assert not [rel for rel in shipped if rel.startswith(("services/", "models/"))
                and not shipped[rel].startswith(str(consumer))]


def test_a_release_without_git_is_walked(tmp_path):
    for rel in ("serving/app.py", "serving/__pycache__/app.cpython-311.pyc", "setup.cfg"):
        _write(str(tmp_path), rel)
    assert build.tracked_files(str(tmp_path), ("serving", "setup.cfg")) == [
        "serving/app.py", "setup.cfg"]


def _entry(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return build.SpecFile(path=f"third_party/python/{name}", runfile=name, local=str(path))


def test_the_image_lock_is_modelships_followed_by_the_consumers(tmp_path):
    runtime = tmp_path / "runtime.txt"
    runtime.write_text(LOCK)
    pin = "tabulate==0.9.0 \\\n    --hash=sha256:" + "c" * 64 + "\n"
    extra = _entry(tmp_path, "team.txt", pin)
    build.merge_locks(str(runtime), [extra])
    merged = runtime.read_text()
    assert merged.startswith(LOCK)
    assert merged.endswith(pin)
    assert sorted(build.lock_packages(str(runtime))) == ["click", "orjson", "tabulate"]


def test_a_package_pinned_twice_is_refused_naming_it_and_the_fix(tmp_path):
    runtime = tmp_path / "runtime.txt"
    runtime.write_text(LOCK)
    extra = _entry(tmp_path, "team.txt", "Click==8.5.1 \\\n    --hash=sha256:" + "a" * 64)
    with pytest.raises(build.BuildError) as err:
        build.merge_locks(str(runtime), [extra])
    message = str(err.value)
    assert "third_party/python/team.txt pins Click==8.5.1" in message
    assert "click==8.5.1" in message and "pip-compile -c" in message
    assert runtime.read_text() == LOCK  # nothing half-written


def test_the_spec_takes_locks(tmp_path):
    del tmp_path
    doc = {"spec_version": build.SPEC_VERSION, "image_name": "team", "handler": "a.b:C",
           "served_name": "team", "service": "//s:server", "size_budget_mb": 60,
           "model": {"path": "m/team.model", "runfile": "w/m/team.model", "file": "team.model"},
           "release": {"path": "m/release.json", "runfile": "w/m/release.json"},
           "release_gate": "m.gate:judge", "release_gate_library": "//m:gate",
           "operating_point": {"path": "m/op.json", "runfile": "w/m/op.json"},
           "requests": {"path": "m/requests.json", "runfile": "w/m/requests.json"},
           "locks": [{"path": "third_party/python/team.txt",
                      "runfile": "w/third_party/python/team.txt"}]}
    assert build.parse_spec(doc).locks[0].path == "third_party/python/team.txt"
    assert not build.parse_spec(dict(doc, locks=[])).locks
    with pytest.raises(build.BuildError, match="'locks' must be a list"):
        build.parse_spec(dict(doc, locks="team.txt"))


def test_an_image_ships_its_own_service_and_model_and_not_the_other_ones(tmp_path):
    files = [build.MODELSHIP_MARKER, "serving/app.py", "serving/tests/test_app.py",
             "inference/artifact.py", "inference/tests/test_kernels.py",
             "inference/text/encoder.py", "inference/text/tests/data/corpus.jsonl",
             "services/__init__.py", "services/one/handler.py", "services/one/tests/test_h.py",
             "services/two/handler.py", "services/two/tests/test_h.py",
             "models/one/paths.py", "models/one/data/big.npz", "models/two/paths.py",
             "tools/image/check.py", "setup.cfg"]
    _git_repo(tmp_path, files)
    spec = build.Spec(
        source="test", declared_by="//services/one:image", image_name="one",
        handler="services.one.handler:One", served_name="one", service="//services/one",
        model=None, model_file="one.model", contract=None, release=None, size_budget_mb=1,
        labels={}, sources=(),
        packages=("inference", "inference/text", "models/one", "serving", "services",
                  "services/one"),
        tests=("inference/text/tests", "services/one/tests", "serving/tests"))
    shipped = {rel for _, rel in build.source_files(str(tmp_path), spec)}
    assert shipped == {
        "serving/app.py", "serving/tests/test_app.py", "inference/artifact.py",
        "inference/text/encoder.py", "inference/text/tests/data/corpus.jsonl",
        "services/__init__.py", "services/one/handler.py", "services/one/tests/test_h.py",
        "models/one/paths.py", "tools/image/check.py", "setup.cfg"}
    # The test stage runs the spec's folders, as build arguments say.
    assert build.build_args(spec)["MODELSHIP_IMAGE_TESTS"] == (
        "inference/text/tests services/one/tests serving/tests")
