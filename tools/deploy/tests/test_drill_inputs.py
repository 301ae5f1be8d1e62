"""What the drill deploys and addresses comes from the archive it is given, or options.

Small OCI archives made here (an index, a manifest, a config with labels; no
layers) stand for what `bazel run //:image` writes: the drill's inputs are
checked before anything is built or started, so these need no root.
"""

import hashlib
import io
import json
import tarfile

import pytest

from tools.deploy import drill
from tools.deploy import variants
from tools.deploy.errors import InputError


def archive(path, labels):
    """Writes an OCI archive whose image config carries `labels`; returns its path."""
    blobs = {}

    def add(doc):
        data = json.dumps(doc).encode()
        digest = "sha256:" + hashlib.sha256(data).hexdigest()
        blobs[digest] = data
        return {"digest": digest, "size": len(data)}

    config = add({"architecture": "amd64", "os": "linux", "config": {"Labels": labels}})
    manifest = add({"schemaVersion": 2, "config": config, "layers": []})
    index = json.dumps({"schemaVersion": 2, "manifests": [manifest]}).encode()
    with tarfile.open(path, "w") as tar:
        files = {"oci-layout": b'{"imageLayoutVersion": "1.0.0"}', "index.json": index}
        files.update({"blobs/sha256/" + d.split(":", 1)[1]: data for d, data in blobs.items()})
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return str(path)


def test_labels_are_read_from_the_image_config(tmp_path):
    path = archive(tmp_path / "a.oci.tar", {"x": "1"})
    assert variants.labels(path) == {"x": "1"}


def test_repository_and_served_name_come_from_the_archive_labels(tmp_path):
    path = archive(tmp_path / "a.oci.tar", {variants.TITLE_LABEL: "team-iris",
                                            variants.SERVED_NAME_LABEL: "iris"})
    assert drill.identity(path) == ("127.0.0.1:5000/team-iris", "iris")


def test_options_win_over_the_labels(tmp_path):
    path = archive(tmp_path / "a.oci.tar", {variants.TITLE_LABEL: "team-iris",
                                            variants.SERVED_NAME_LABEL: "iris"})
    assert drill.identity(path, "registry.example/ml/churn", "churn") == \
        ("registry.example/ml/churn", "churn")


@pytest.mark.parametrize("labels, said", [
    ({variants.SERVED_NAME_LABEL: "iris"}, "--repository REPO"),
    ({variants.TITLE_LABEL: "team-iris"}, "--served-name NAME"),
])
def test_a_missing_label_names_the_option_to_pass(tmp_path, labels, said):
    path = archive(tmp_path / "a.oci.tar", labels)
    with pytest.raises(InputError, match=said):
        drill.identity(path)


def test_a_bad_repository_is_refused(tmp_path):
    path = archive(tmp_path / "a.oci.tar", {variants.SERVED_NAME_LABEL: "iris"})
    with pytest.raises(InputError, match="--repository 'Team/Iris' is not a valid image name"):
        drill.identity(path, "Team/Iris")


def run_main(capsys, *argv):
    """(exit status, stderr) of the drill's entry point."""
    status = drill.main(list(argv))
    return status, capsys.readouterr().err


def test_main_without_a_served_name_is_exit_2_before_anything_starts(tmp_path, capsys):
    path = archive(tmp_path / "a.oci.tar", {variants.TITLE_LABEL: "team-iris"})
    status, err = run_main(capsys, "--archive", path)
    assert status == 2
    assert err.startswith("drill: ") and "--served-name NAME" in err
    assert "Traceback" not in err


def test_main_with_a_bad_request_file_is_exit_2(tmp_path, capsys):
    path = archive(tmp_path / "a.oci.tar", {variants.TITLE_LABEL: "team-iris"})
    request = tmp_path / "request.json"
    request.write_text("[]")
    status, err = run_main(capsys, "--archive", path, "--served-name", "iris",
                           "--request", str(request))
    assert status == 2
    assert f"--request {request}" in err


def test_main_with_something_that_is_not_an_archive_is_exit_2(tmp_path, capsys):
    path = tmp_path / "model.bin"
    path.write_bytes(b"\0" * 100)
    status, err = run_main(capsys, "--archive", str(path))
    assert status == 2
    assert f"--archive {path}: not an OCI archive" in err
