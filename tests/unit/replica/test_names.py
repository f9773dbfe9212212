import pytest

from replica.errors import DigestInvalid, NameInvalid
from replica.names import check_digest, check_name, is_tag


@pytest.mark.parametrize(
    "name", ["a", "library/ubuntu", "a-b/c__d/e.f", "x1/y--z", "a/manifests/b"]
)
def test_valid_names(name: str) -> None:
    assert check_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "A", "a/../b", "..", "a//b", "/a", "a/", "-a", "a_", "a/.b", "a" * 256, "a\0b", "a b"],
)
def test_invalid_names(name: str) -> None:
    with pytest.raises(NameInvalid):
        check_name(name)


def test_tags() -> None:
    assert is_tag("v1.0_rc-1") and is_tag("A" * 128)
    assert not is_tag("A" * 129) and not is_tag(".hidden") and not is_tag("a/b") and not is_tag("")


def test_digests() -> None:
    assert check_digest("sha256:" + "a" * 64)
    assert check_digest("sha512:" + "b" * 128)
    for bad in (
        "sha256:" + "a" * 63,
        "sha256:" + "A" * 64,
        "md5:" + "a" * 32,
        "sha512:" + "a" * 64,
        "sha256:../../etc",
    ):
        with pytest.raises(DigestInvalid):
            check_digest(bad)
