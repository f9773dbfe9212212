"""qreg upgrade-check's verdict on what the replicas report."""

from __future__ import annotations

from cli.upgrade_check import verdict


def replica(name: str, applies: int | None, highest: int = 1, halted: str | None = None) -> dict:
    return {
        "replica_id": name,
        "command_version": applies,
        "highest_command_version": highest,
        "halted": halted,
    }


def test_all_on_one_version_is_safe() -> None:
    assert verdict([replica("r0", 1), replica("r1", 1), replica("r2", 1)]) == (1, [])


def test_a_replica_behind_what_another_writes_is_named() -> None:
    needed, problems = verdict([replica("r0", 2), replica("r1", 1), replica("r2", 1)])
    assert needed == 2
    assert [p.split()[0] for p in problems] == ["r1", "r2"]


def test_halted_and_silent_replicas_are_problems() -> None:
    _, problems = verdict(
        [replica("r0", 1, halted="version 2 at index 9"), replica("r1", None), replica("r2", 1)]
    )
    assert "stopped applying" in problems[0] and "did not answer" in problems[1]
