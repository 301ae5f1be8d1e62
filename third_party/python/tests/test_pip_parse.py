"""pip_parse's installer: hashes are enforced, failures name the package.

Runs the installer the repository rule runs (pip_install.py) against wheels
made here and served from a local folder (--no-index), so no network is
needed and the bytes are known.
"""

import base64
import hashlib
import os
import subprocess
import sys
import zipfile

import pytest

INSTALLER = "external/rules_python/python/private/pip_install.py"


def make_wheel(folder, name, version, requires=()):
    """Writes a minimal pure-Python wheel; returns (path, sha256)."""
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\nName: {}\nVersion: {}\n{}\n".format(
            name, version, "".join(f"Requires-Dist: {r}\n" for r in requires)),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
                         "Tag: py3-none-any\n",
    }
    record = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record.append(f"{path},sha256={digest.decode()},{len(text)}")
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    path = os.path.join(folder, f"{name}-{version}-py3-none-any.whl")
    with zipfile.ZipFile(path, "w") as whl:
        for member, text in files.items():
            whl.writestr(zipfile.ZipInfo(member, (2020, 1, 1, 0, 0, 0)), text)
    with open(path, "rb") as data:
        return path, hashlib.sha256(data.read()).hexdigest()


def install(tmp_path, lock_text):
    """Runs the installer on a lock; returns the finished process."""
    lock = tmp_path / "demo.txt"
    lock.write_text(lock_text)
    out = tmp_path / "repo"
    out.mkdir()
    return subprocess.run(
        [sys.executable, "-I", INSTALLER, "--repo", "pypi_demo", "--lock", str(lock),
         "--lock-label", "//third_party/python:demo.txt", "--out", str(out),
         "--pip-arg=--no-index", f"--pip-arg=--find-links={tmp_path / 'wheels'}",
         "--pip-arg=--no-cache-dir"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(tmp_path),
             "PIP_CONFIG_FILE": os.devnull})


@pytest.fixture(name="wheels")
def fixture_wheels(tmp_path):
    """Two wheels, alpha depending on beta, in tmp_path/wheels."""
    folder = tmp_path / "wheels"
    folder.mkdir()
    return {
        "alpha": make_wheel(str(folder), "alpha", "1.0", requires=["beta>=2"]),
        "beta": make_wheel(str(folder), "beta", "2.0"),
    }


def test_hashed_lock_installs_one_library_per_package_with_its_deps(tmp_path, wheels):
    proc = install(tmp_path, f"alpha==1.0 --hash=sha256:{wheels['alpha'][1]}\n"
                             f"beta==2.0 --hash=sha256:{wheels['beta'][1]}\n")
    assert proc.returncode == 0, proc.stderr
    build = (tmp_path / "repo" / "alpha" / "BUILD.bazel").read_text()
    assert 'deps = ["//beta"]' in build
    assert (tmp_path / "repo" / "alpha" / "site" / "alpha" / "__init__.py").exists()
    bzl = (tmp_path / "repo" / "requirements.bzl").read_text()
    assert '"@pypi_demo//alpha"' in bzl and '"@pypi_demo//beta"' in bzl


def test_tampered_hash_fails_naming_the_package(tmp_path, wheels):
    wrong = "0" * 64
    proc = install(tmp_path, f"alpha==1.0 --hash=sha256:{wheels['alpha'][1]}\n"
                             f"beta==2.0 --hash=sha256:{wrong}\n")
    assert proc.returncode == 1
    assert "hash mismatch" in proc.stderr
    assert f"beta==2.0 (beta-2.0-py3-none-any.whl): the lock expects sha256 {wrong}" \
        in proc.stderr
    assert wheels["beta"][1] in proc.stderr
    assert "Traceback" not in proc.stderr


def test_tampered_lock_with_several_hashes_fails_naming_the_package(tmp_path, wheels):
    # Real locks carry one hash per platform's wheel; pip lists each expected one.
    wrong = ["1" * 64, "2" * 64]
    proc = install(tmp_path, f"alpha==1.0 --hash=sha256:{wheels['alpha'][1]}\n"
                             f"beta==2.0 --hash=sha256:{wrong[0]} --hash=sha256:{wrong[1]}\n")
    assert proc.returncode == 1
    assert "hash mismatch" in proc.stderr
    assert "beta==2.0 (beta-2.0-py3-none-any.whl): the lock expects sha256" in proc.stderr
    assert wheels["beta"][1] in proc.stderr


def test_unhashed_entry_is_refused(tmp_path, wheels):
    proc = install(tmp_path, f"alpha==1.0 --hash=sha256:{wheels['alpha'][1]}\nbeta==2.0\n")
    assert proc.returncode == 1
    assert "beta==2.0" in proc.stderr and "has no --hash" in proc.stderr


def test_unpinned_entry_is_refused_before_any_download(tmp_path, wheels):
    proc = install(tmp_path, f"beta>=2 --hash=sha256:{wheels['beta'][1]}\n")
    assert proc.returncode == 1
    assert "'beta>=2' is not pinned with '=='" in proc.stderr


def test_lock_missing_a_dependency_is_reported_as_stale(tmp_path, wheels):
    proc = install(tmp_path, f"alpha==1.0 --hash=sha256:{wheels['alpha'][1]}\n")
    assert proc.returncode == 1
    assert "no entry for beta, which alpha requires" in proc.stderr
    assert "tools/relock" in proc.stderr


def test_package_without_a_wheel_is_refused(tmp_path, wheels):
    del wheels
    proc = install(tmp_path, "gamma==1.0 --hash=sha256:" + "1" * 64 + "\n")
    assert proc.returncode == 1
    assert "no wheel of gamma==1.0" in proc.stderr
