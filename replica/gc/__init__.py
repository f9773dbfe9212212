"""Garbage collection on the replica: the collector (one replica at a time decides,
through Raft, which blobs go: consensus/gc.py), the sweeper (every replica deletes its
own files of them) and the schedule."""
