"""Upload sessions: a cap per user, expiry of untouched ones, and counts across restarts."""

from __future__ import annotations

import os
import time

import pytest

from replica.blobs.uploads import UploadSessions
from replica.errors import BlobUploadUnknown, TooManyRequests


def test_each_user_holds_a_bounded_number_of_sessions(tmp_path) -> None:
    sessions = UploadSessions(str(tmp_path), "r0", max_per_user=3)
    opened = [sessions.create("a/b", "moby") for _ in range(3)]
    with pytest.raises(TooManyRequests) as refused:
        sessions.create("a/b", "moby")
    assert refused.value.status == 429
    sessions.create("a/b", "orca")  # others are not affected
    sessions.remove(opened[0])
    sessions.remove(opened[0])  # twice changes nothing
    sessions.create("a/b", "moby")
    with pytest.raises(TooManyRequests):
        sessions.create("a/b", "moby")
    # The count survives a restart: the sessions are on disk.
    again = UploadSessions(str(tmp_path), "r0", max_per_user=3)
    assert again.in_progress("moby") == 3 and again.in_progress("orca") == 1


def test_untouched_sessions_expire(tmp_path) -> None:
    sessions = UploadSessions(str(tmp_path), "r0", max_per_user=2, expire_after_s=60)
    old = sessions.create("a/b", "moby")
    fresh = sessions.create("a/b", "moby")
    old.touched = time.time() - 120
    assert sessions.purge_abandoned() == 1
    assert not os.path.exists(old.directory)
    with pytest.raises(BlobUploadUnknown):
        sessions.get("a/b", old.id)
    assert sessions.get("a/b", fresh.id) is fresh
    sessions.create("a/b", "moby")  # the expired one no longer counts
    # Sessions left on disk by an earlier run expire by their files' age.
    stale = os.path.join(str(tmp_path), "uploads", "f" * 32)
    os.makedirs(stale)
    with open(os.path.join(stale, "user"), "w") as f:
        f.write("ahab")
    os.utime(stale, (time.time() - 120, time.time() - 120))
    restarted = UploadSessions(str(tmp_path), "r0", max_per_user=2, expire_after_s=60)
    assert not os.path.exists(stale) and restarted.in_progress("ahab") == 0
