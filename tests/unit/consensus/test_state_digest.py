"""The state digest: equal states, equal digests, at every index; a change behind the
state machine's back shows."""

from __future__ import annotations

import itertools

import lmdb

from consensus import MetadataState
from proto import commands_pb2 as pb


def _commands() -> list[pb.Command]:
    out = []
    for i in range(30):
        digest = f"sha256:{i:064x}"
        out.append(
            pb.Command(
                link_blob=pb.LinkBlob(
                    repository=f"a/r{i % 4}", digest=digest, size=i + 1, replica_id="r0"
                )
            )
        )
        out.append(
            pb.Command(put_account=pb.PutAccount(name=f"user{i}", password_hash="h", at_ms=i))
        )
        if i % 3 == 0:
            out.append(pb.Command(delete_account=pb.DeleteAccount(name=f"user{i}")))
        if i % 5 == 0:
            out.append(
                pb.Command(unlink_blob=pb.UnlinkBlob(repository=f"a/r{i % 4}", digest=digest))
            )
    return out


def test_replicas_applying_the_same_log_agree_at_every_index(tmp_path) -> None:
    one, two = MetadataState(str(tmp_path / "one")), MetadataState(str(tmp_path / "two"))
    index = itertools.count(1)
    for command in _commands():
        i = next(index)
        one.apply(i, command.SerializeToString())
        two.apply(i, command.SerializeToString())
        assert one.digest() == two.digest()
    assert one.recent_digests() == two.recent_digests()
    applied, kept, recounted = one.verify_at_rest()
    assert applied == i and kept == recounted  # the running digest is the full recount
    assert one.range_digests() == two.range_digests()
    one.close()
    two.close()


def test_a_change_behind_the_state_machines_back_shows(tmp_path) -> None:
    state = MetadataState(str(tmp_path / "s"))
    for i, command in enumerate(_commands(), 1):
        state.apply(i, command.SerializeToString())
    state.close()
    env = lmdb.open(str(tmp_path / "s"), map_size=1 << 30)
    with env.begin(write=True) as txn:  # rot: one byte of one account record
        key = b"u\0user1"
        value = bytearray(txn.get(key))
        value[-1] ^= 1
        txn.put(key, bytes(value))
    env.close()
    state = MetadataState(str(tmp_path / "s"))
    _, kept, recounted = state.verify_at_rest()
    assert kept != recounted
    state.close()
