"""Blobs: their storage, uploads, streams to clients, transfer between replicas,
replication to a majority, background sync and scrubbing.

Nothing here imports `replica/registry.py`: what blob code needs of the metadata
(the members, who holds a blob, recording a copy) comes in as arguments.
"""
