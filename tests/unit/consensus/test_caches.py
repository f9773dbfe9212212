"""Caches and cache preferences in the state machine."""

from __future__ import annotations

from consensus import accounts, caches
from proto import commands_pb2 as pb
from tests.unit.consensus.test_accounts import Cluster


def test_caches_chains_and_preferences(tmp_path) -> None:
    c = Cluster(str(tmp_path / "state"))
    c.ok(put_account=pb.PutAccount(name="ahab", password_hash="x", create_only=True, at_ms=1))
    c.ok(
        put_cache=pb.PutCache(
            name="eu", url="https://eu.example:5443", region="europe", create_only=True
        )
    )
    c.ok(put_cache=pb.PutCache(name="eu-west", url="https://127.0.0.1:7000", upstream="eu"))
    assert (
        c.apply(put_cache=pb.PutCache(name="eu", url="https://x", create_only=True)).error_code
        == "ALREADY_EXISTS"
    )
    assert c.apply(put_cache=pb.PutCache(name="bad", url="ftp://x")).error_code == "INVALID_INPUT"
    # No loops, no missing upstream, no endless chains.
    assert (
        c.apply(put_cache=pb.PutCache(name="eu", url="https://x", upstream="eu-west")).error_code
        == "INVALID_INPUT"
    )
    assert (
        c.apply(put_cache=pb.PutCache(name="x", url="https://x", upstream="nope")).error_code
        == "INVALID_INPUT"
    )
    for n in range(2, 6):
        result = c.apply(
            put_cache=pb.PutCache(
                name=f"hop{n}", url="https://x", upstream="eu-west" if n == 2 else f"hop{n - 1}"
            )
        )
    assert result.error_code == "INVALID_INPUT"
    assert c.state.view(caches.chain, "eu-west") == ["eu-west", "eu"]
    # Preferences name an existing cache and a user; a removed cache stops being preferred.
    c.ok(set_cache_preference=pb.SetCachePreference(user="ahab", cache="eu-west"))
    assert c.state.view(caches.preference, "ahab").url == "https://127.0.0.1:7000"
    assert (
        c.apply(set_cache_preference=pb.SetCachePreference(user="ahab", cache="nope")).error_code
        == "NOT_FOUND"
    )
    assert c.apply(delete_cache=pb.DeleteCache(name="eu")).error_code == "INVALID_INPUT"
    for name in ("hop4", "hop3", "hop2", "eu-west"):
        c.apply(delete_cache=pb.DeleteCache(name=name))
    assert c.state.view(caches.preference, "ahab") is None
    assert [x.name for x in c.state.view(caches.caches)] == ["eu"]
    kinds = {e["action"] for e in c.state.view(accounts.audit_log, 0, 100)}
    assert {"put_cache", "delete_cache", "set_cache_preference"} <= kinds
