"""HTTP handlers, one module per OCI resource: parse the request, call the registry, answer."""
