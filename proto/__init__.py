"""Wire formats: Raft log commands and replica-to-replica messages, generated from .proto files."""
