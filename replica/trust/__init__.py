"""Content trust: the Notary v1 (TUF) service at the registry's own address, what a
repository's signatures say about its tags, and the policy that refuses unsigned ones.

`http.py` the routes, `validation.py` what an update must satisfy, `metadata.py` the
TUF documents, `keys.py` keys and signatures, `canonical.py` the bytes that are
signed, `service.py` publishing and the server-held keys, `status.py` signed status
and the signed-only policy. The facts live in consensus/trust.py."""
