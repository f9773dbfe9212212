"""Garbage collection's bookkeeping in the state: who is collecting (a lease, so one
replica collects at a time), each run and each replica's sweep of it, the schedule.

Key layout (gc.py has the collection's own keys):

    gl                   -> ClaimCollector: the replica collecting, until when
    gs                   -> SetCollectionSchedule
    gr\\0<epoch, 8 bytes> -> CollectionRun (the last KEPT_RUNS)
"""

from __future__ import annotations

import struct
from typing import Any

import lmdb

from consensus import gc
from consensus.accounts import scan
from proto import commands_pb2 as pb

_LEASE = b"gl"
_SCHEDULE = b"gs"
_RUNS = b"gr\0"
KEPT_RUNS = 50


def _fail(code: str, message: str) -> pb.Result:
    return pb.Result(error_code=code, message=message)


def _run_key(epoch: int) -> bytes:
    return _RUNS + struct.pack(">Q", epoch)


def lease(txn: lmdb.Transaction) -> pb.ClaimCollector | None:
    raw = txn.get(_LEASE)
    return pb.ClaimCollector.FromString(bytes(raw)) if raw else None


def schedule(txn: lmdb.Transaction) -> pb.SetCollectionSchedule:
    raw = txn.get(_SCHEDULE)
    return pb.SetCollectionSchedule.FromString(bytes(raw)) if raw else pb.SetCollectionSchedule()


def run(txn: lmdb.Transaction, epoch: int) -> pb.CollectionRun | None:
    raw = txn.get(_run_key(epoch))
    return pb.CollectionRun.FromString(bytes(raw)) if raw else None


def runs(txn: lmdb.Transaction, limit: int = KEPT_RUNS) -> list[pb.CollectionRun]:
    """The latest runs, newest first (at most KEPT_RUNS are kept)."""
    found = [pb.CollectionRun.FromString(v) for _, v in scan(txn, _RUNS)]
    return found[::-1][:limit]


def _held_by_other(txn: lmdb.Transaction, replica_id: str, at_ms: int) -> pb.ClaimCollector | None:
    held = lease(txn)
    if held is not None and held.replica_id != replica_id and held.until_ms > at_ms:
        return held
    return None


def _claim(txn: lmdb.Transaction, c: pb.ClaimCollector) -> pb.Result:
    other = _held_by_other(txn, c.replica_id, c.at_ms)
    if other is not None:
        return _fail("CONFLICT", f"{other.replica_id} is collecting garbage")
    if c.until_ms:
        txn.put(_LEASE, c.SerializeToString())
    else:
        txn.delete(_LEASE)
    return pb.Result()


def _begin(txn: lmdb.Transaction, c: pb.BeginCollection) -> pb.Result:
    if c.replica_id:  # from before runs were recorded, a bare epoch
        other = _held_by_other(txn, c.replica_id, c.at_ms)
        if other is not None:
            return _fail("CONFLICT", f"{other.replica_id} is collecting garbage")
    epoch = gc.begin(txn, c)
    if c.replica_id:
        record = pb.CollectionRun(
            epoch=epoch, replica_id=c.replica_id, started_ms=c.at_ms, time_limit_s=c.time_limit_s
        )
        txn.put(_run_key(epoch), record.SerializeToString())
        if epoch > KEPT_RUNS:
            txn.delete(_run_key(epoch - KEPT_RUNS))
    return pb.Result(message=str(epoch))


def _finish(txn: lmdb.Transaction, c: pb.FinishCollection) -> pb.Result:
    record = run(txn, c.epoch)
    if record is None:
        return _fail("NOT_FOUND", f"no collection {c.epoch}")
    record.finish.CopyFrom(c)
    txn.put(_run_key(c.epoch), record.SerializeToString())
    return pb.Result()


def _record_sweep(txn: lmdb.Transaction, c: pb.RecordSweep) -> pb.Result:
    record = run(txn, c.epoch)
    if record is None:
        return pb.Result()  # a run forgotten meanwhile: nothing to add to
    kept = [s for s in record.sweeps if s.replica_id != c.replica_id]
    del record.sweeps[:]
    record.sweeps.extend(sorted([*kept, c], key=lambda s: s.replica_id))
    txn.put(_run_key(c.epoch), record.SerializeToString())
    return pb.Result()


def _set_schedule(txn: lmdb.Transaction, c: pb.SetCollectionSchedule) -> pb.Result:
    # The cron expression is checked by the replica that proposes it.
    if c.cron or c.time_limit_s:
        txn.put(_SCHEDULE, c.SerializeToString())
    else:
        txn.delete(_SCHEDULE)
    return pb.Result()


APPLY: dict[str, Any] = {
    "claim_collector": _claim,
    "begin_collection": _begin,
    "finish_collection": _finish,
    "record_sweep": _record_sweep,
    "set_collection_schedule": _set_schedule,
}
