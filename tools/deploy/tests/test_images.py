"""Image references: pinned by digest or refused."""

import pytest

from tools.deploy import images
from tools.deploy.errors import InputError

DIGEST = "sha256:" + "ab" * 32


def test_reference_with_digest_is_accepted():
    image = images.parse(f"registry.example:5000/modelship/digits@{DIGEST}")
    assert image.repository == "registry.example:5000/modelship/digits"
    assert image.digest == DIGEST
    assert image.short == "abababababab"


def test_tag_beside_the_digest_is_dropped():
    image = images.parse(f"127.0.0.1:5000/digits:stable@{DIGEST}")
    assert image.reference == f"127.0.0.1:5000/digits@{DIGEST}"


@pytest.mark.parametrize("reference", ["digits:stable", "digits", "registry:5000/digits:1.0"])
def test_tag_is_refused_naming_the_fix(reference):
    with pytest.raises(InputError, match="not pinned by digest.*REF@sha256"):
        images.parse(reference)


@pytest.mark.parametrize("digest", ["sha256:abc", "sha512:" + "a" * 64, "sha256:" + "A" * 64])
def test_malformed_digest_is_refused(digest):
    with pytest.raises(InputError, match="sha256:<64 lower-case hex>"):
        images.parse(f"digits@{digest}")


def test_a_trailing_newline_is_refused_in_the_repository_and_the_digest():
    # parse() strips the whole reference first; what it keeps holds no newline.
    assert images.parse(f"digits@{DIGEST}\n").digest == DIGEST
    with pytest.raises(InputError, match="sha256:<64 lower-case hex>"):
        images.check_digest(DIGEST + "\n")
    with pytest.raises(InputError, match="not a valid image name"):
        images.parse(f"registry.example:5000/digits\n@{DIGEST}")
