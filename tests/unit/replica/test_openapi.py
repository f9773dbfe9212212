"""The management API's OpenAPI document: valid, and in step with the mounted routes."""

from __future__ import annotations

from openapi_spec_validator import validate

from replica.api import (
    accounts,
    auth_settings,
    caches,
    events,
    gc,
    logs,
    openapi,
    policies,
    repositories,
    scans,
    tags,
    webhooks,
)


def test_the_document_is_valid_openapi() -> None:
    validate(openapi.document())


def test_every_route_is_documented_and_nothing_else() -> None:
    mounted = {
        (r.path, m.lower())
        for r in accounts.ROUTES
        + auth_settings.ROUTES
        + events.ROUTES
        + webhooks.ROUTES
        + repositories.ROUTES
        + caches.ROUTES
        + gc.ROUTES
        + policies.ROUTES
        + logs.ROUTES
        + scans.ROUTES
        + tags.ROUTES
        for m in r.methods or ()
        if m != "HEAD" and r.path.startswith("/api/")
    }
    documented = {
        (path, method)
        for path, operations in openapi.document()["paths"].items()
        for method in operations
        if method != "parameters"
    }
    assert mounted == documented


def test_the_console_reads_a_valid_openapi_30_form() -> None:
    converted = openapi.as_openapi_30(openapi.document())
    assert converted["openapi"] == "3.0.3"
    validate(converted)
    assert '"null"' not in str(converted).replace("'", '"')


def test_the_registry_api_document_is_valid_openapi_30() -> None:
    from replica.api import registry_openapi

    validate(registry_openapi.document())
