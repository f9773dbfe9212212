"""The replica server: OCI Distribution API, blob store, and their wiring to consensus."""
