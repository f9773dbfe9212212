"""The journal's count of command bytes, which bounds the log held in memory."""

from __future__ import annotations

from consensus.durability import DurableJournal


def test_bytes_follow_appends_truncations_and_compactions(tmp_path) -> None:
    path = str(tmp_path / "journal")
    journal = DurableJournal(path, skip_fsync=True)
    for i in range(1, 101):
        journal.add(b"x" * i, i, 1)
    assert journal.bytes == sum(range(1, 101))
    journal.deleteEntriesFrom(90)  # a follower's tail overwritten: entries 91-100 go
    assert journal.bytes == sum(range(1, 91))
    journal.deleteEntriesTo(80)  # a snapshot covers entries 1-80
    assert journal.bytes == sum(range(81, 91))
    journal.clear()
    assert journal.bytes == 0
    journal.add(b"y" * 7, 101, 2)
    journal._destroy()  # closes the file
    again = DurableJournal(path, skip_fsync=True)  # counted from the file at start
    assert again.bytes == 7
    again._destroy()
