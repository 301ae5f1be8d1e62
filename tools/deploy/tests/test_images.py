"""Image references: pinned by digest or refused."""

import pytest

from tools.deploy import images
from tools.deploy.errors import InputError

DIGEST = "sha256:" + "ab" * 32


def test_reference_with_digest_is_accepted():
    image = images.parse(f"registry.example:5000/team/iris@{DIGEST}")
    assert image.repository == "registry.example:5000/team/iris"
    assert image.digest == DIGEST
    assert image.short == "abababababab"


def test_tag_beside_the_digest_is_dropped():
    image = images.parse(f"127.0.0.1:5000/iris:stable@{DIGEST}")
    assert image.reference == f"127.0.0.1:5000/iris@{DIGEST}"


@pytest.mark.parametrize("reference", ["iris:stable", "iris", "registry:5000/iris:1.0"])
def test_tag_is_refused_naming_the_fix(reference):
    with pytest.raises(InputError, match="not pinned by digest.*REF@sha256"):
        images.parse(reference)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64])
def test_malformed_digest_is_refused(digest):
    with pytest.raises(InputError, match="sha256:<64 lower-case hex>"):
        images.parse(f"iris@{digest}")


def test_a_trailing_newline_is_refused_in_the_repository_and_the_digest():
    # parse() strips the whole reference first; what it keeps holds no newline.
    assert images.parse(f"iris@{DIGEST}\n").digest == DIGEST
    with pytest.raises(InputError, match="sha256:<64 lower-case hex>"):
        images.check_digest(DIGEST + "\n")
    with pytest.raises(InputError, match="not a valid image name"):
        images.parse(f"registry.example:5000/iris\n@{DIGEST}")


@pytest.mark.parametrize("reference, name", [
    ("registry.example:5000/team/iris", "iris"),
    ("127.0.0.1:5000/sentiment", "sentiment"),
    ("registry.example/a/b/text_embedder", "text-embedder"),
    ("registry.example/team/iris.v2", "iris-v2"),
    ("iris:stable", "iris"),
])
def test_default_name_is_the_last_path_component_of_the_repository(reference, name):
    assert images.default_name(images.parse(f"{reference}@{DIGEST}")) == name


@pytest.mark.parametrize("repository", ["registry.example/team/2fast",
                                        "registry.example/" + "x" * 57])
def test_a_repository_that_cannot_name_objects_asks_for_name(repository):
    with pytest.raises(InputError, match="pass --name NAME"):
        images.default_name(images.parse(f"{repository}@{DIGEST}"))


@pytest.mark.parametrize("name", ["Iris", "iris_v2", "-iris", "iris-", "", "x" * 57])
def test_bad_names_are_refused_with_the_rule(name):
    with pytest.raises(InputError, match="--name .*lower-case letters, numbers and '-'"):
        images.check_name(name)


def test_the_longest_name_still_fits_a_kubernetes_name_with_its_track():
    name = images.check_name("x" * images.NAME_MAX)
    assert len(f"{name}-canary") == 63
