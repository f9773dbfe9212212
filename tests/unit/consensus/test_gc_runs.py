"""Garbage collection's bookkeeping: one collector at a time, runs and sweeps recorded."""

from __future__ import annotations

from consensus import gc, gc_runs
from proto import commands_pb2 as pb
from tests.unit.consensus.applied_log import AppliedLog as Log


def test_one_replica_collects_at_a_time(tmp_path) -> None:
    log = Log(str(tmp_path))
    claim = pb.ClaimCollector(replica_id="a", at_ms=1_000, until_ms=31_000)
    assert not log.apply(claim_collector=claim).error_code
    other = pb.ClaimCollector(replica_id="b", at_ms=2_000, until_ms=32_000)
    assert log.apply(claim_collector=other).error_code == "CONFLICT"
    began = log.apply(begin_collection=pb.BeginCollection(at_ms=3_000, replica_id="b"))
    assert began.error_code == "CONFLICT"
    assert log.state.view(gc.epoch) == 0
    assert not log.apply(
        begin_collection=pb.BeginCollection(at_ms=3_000, replica_id="a")
    ).error_code
    # The lease lapses (its holder died): another may take it.
    other.at_ms = 40_000
    assert not log.apply(claim_collector=other).error_code
    # Released by its holder.
    assert not log.apply(claim_collector=pb.ClaimCollector(replica_id="b", at_ms=41_000)).error_code
    assert log.state.view(gc_runs.lease) is None


def test_runs_are_recorded_with_each_replicas_sweep_and_the_oldest_forgotten(tmp_path) -> None:
    log = Log(str(tmp_path))
    for n in range(gc_runs.KEPT_RUNS + 3):
        assert log.apply(
            begin_collection=pb.BeginCollection(at_ms=n, replica_id="a")
        ).message == str(n + 1)
    last = gc_runs.KEPT_RUNS + 3
    log.apply(
        finish_collection=pb.FinishCollection(epoch=last, outcome="finished", blobs_collected=2)
    )
    for replica in ("r2", "r1", "r2"):
        log.apply(record_sweep=pb.RecordSweep(epoch=last, replica_id=replica, files=2, bytes=10))
    runs = log.state.view(gc_runs.runs)
    assert [r.epoch for r in runs] == list(range(last, 3, -1))
    assert runs[0].finish.outcome == "finished"
    assert [s.replica_id for s in runs[0].sweeps] == ["r1", "r2"]
    assert log.state.view(gc_runs.run, 1) is None
    assert log.apply(finish_collection=pb.FinishCollection(epoch=1)).error_code == "NOT_FOUND"


def test_the_schedule_is_kept_until_cleared(tmp_path) -> None:
    log = Log(str(tmp_path))
    log.apply(set_collection_schedule=pb.SetCollectionSchedule(cron="0 0 0 * * *", time_limit_s=60))
    assert log.state.view(gc_runs.schedule).cron == "0 0 0 * * *"
    log.apply(set_collection_schedule=pb.SetCollectionSchedule())
    assert log.state.view(gc_runs.schedule).cron == ""
