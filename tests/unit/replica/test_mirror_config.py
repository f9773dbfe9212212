"""What pull mirrors and proxies make of their settings, and what the importer reads
from a manifest."""

from __future__ import annotations

import json

import pytest

from proto import commands_pb2 as pb
from replica.mirror.importer import _blob_sizes
from replica.mirror.proxy import upstream_of
from replica.mirror.pull import DEFAULT_INTERVAL_S, MIN_INTERVAL_S, interval_s


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://registry-1.docker.io", ("https://registry-1.docker.io", "")),
        ("https://r.example:5000/", ("https://r.example:5000", "")),
        ("https://r.example/mirror/hub", ("https://r.example", "mirror/hub/")),
    ],
)
def test_a_proxys_upstream_and_path_prefix(url: str, expected: tuple[str, str]) -> None:
    assert upstream_of(url) == expected


@pytest.mark.parametrize("url", ["ftp://r.example", "r.example", "https://", "https://r/?x=1"])
def test_a_proxys_upstream_must_be_a_plain_http_url(url: str) -> None:
    with pytest.raises(ValueError):
        upstream_of(url)


def test_a_pull_mirror_polls_at_its_interval_never_faster_than_the_floor() -> None:
    assert interval_s(pb.Webhook()) == DEFAULT_INTERVAL_S
    assert interval_s(pb.Webhook(interval_s=1)) == MIN_INTERVAL_S
    assert interval_s(pb.Webhook(interval_s=600)) == 600


def test_blob_sizes_come_from_the_config_and_layers() -> None:
    body = json.dumps({
        "config": {"digest": "sha256:" + "a" * 64, "size": 10},
        "layers": [{"digest": "sha256:" + "b" * 64, "size": 20}, {"digest": "x"}],
    }).encode()  # fmt: skip
    assert _blob_sizes(body) == {"sha256:" + "a" * 64: 10, "sha256:" + "b" * 64: 20}
