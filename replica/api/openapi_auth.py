"""The OpenAPI paths of the authentication settings (auth_settings.py): the mode, the
directory and its sync, teams that follow groups, client CAs and revocations."""

from __future__ import annotations

from typing import Any

from replica.api.openapi_schemas import op, request_body

_OBJECT: dict[str, Any] = {"type": "object"}
_SETTINGS: dict[str, Any] = {
    "type": "object",
    "properties": {
        "mode": {"enum": ["managed", "ldap", "none"]},
        "revision": {"type": "integer"},
        "ldap": {"type": "object"},
        "client_cas": {"type": "array", "items": _OBJECT},
        "certificate_identity": {"enum": ["cn", "email", "dns"]},
        "revoked_serials": {"type": "array", "items": {"type": "string"}},
        "crl_set": {"type": "boolean"},
    },
}
_TEXT = {"type": "string"}
_FLAG = {"type": "boolean"}

AUTH_PATHS: dict[str, dict[str, Any]] = {
    "/api/v0/auth/settings": {
        "get": op("How people sign in (never the bind password)", "admins", answer=_SETTINGS)
    },
    "/api/v0/auth/mode": {
        "put": op("Set the mode, on every replica at once", "admins", answer=_SETTINGS)
        | request_body(
            {
                "type": "object",
                "required": ["mode"],
                "properties": {"mode": {"enum": ["managed", "ldap", "none"]}, "force": _FLAG},
            }
        )
    },
    "/api/v0/auth/ldap": {
        "put": op(
            "Change the directory's settings (keys given replace)", "admins", answer=_SETTINGS
        )  # fmt: skip
        | request_body(
            {
                "type": "object",
                "properties": {
                    **{
                        k: _TEXT
                        for k in (
                            "url",
                            "ca_pem",
                            "bind_dn",
                            "bind_password",
                            "user_base_dn",
                            "user_filter",
                            "username_attribute",
                            "admin_group_dn",
                            "member_attribute",
                        )
                    },  # fmt: skip
                    **{k: _FLAG for k in ("start_tls", "allow_plain", "keep_managed")},
                    "sync_interval_s": {"type": "integer", "minimum": 0},
                },
            }
        )
    },
    "/api/v0/auth/ldap/test": {
        "post": op(
            "Bind as the service account, count users, check a password", "admins", answer=_OBJECT
        )  # fmt: skip
        | request_body({"type": "object", "properties": {"username": _TEXT, "password": _TEXT}})
    },
    "/api/v0/auth/ldap/sync": {
        "post": op("Sync accounts and teams with the directory now", "admins", answer=_OBJECT),
        "get": op("This replica's last sync", "admins", answer=_OBJECT),
    },
    "/api/v0/auth/client-cas": {
        "post": op("Trust a client CA", "admins", 201, _SETTINGS)
        | request_body(
            {
                "type": "object",
                "required": ["name", "pem"],
                "properties": {"name": _TEXT, "pem": _TEXT},
            }
        )
    },
    "/api/v0/auth/client-cas/{name}": {
        "delete": op("Stop trusting a client CA", "admins", answer=_SETTINGS)
    },
    "/api/v0/auth/client-certificates": {
        "put": op("What names the user; revoke serials; set a CRL", "admins", answer=_SETTINGS)
        | request_body(
            {
                "type": "object",
                "properties": {
                    "identity": {"enum": ["cn", "email", "dns"]},
                    "revoke": {"type": "array", "items": _TEXT},
                    "crl_pem": _TEXT,
                },
            }
        )
    },
    "/api/v0/accounts/{name}/teams/{team}/directory-group": {
        "put": op(
            "Make a team follow a directory group ('' : managed here)",
            "organization owners and admins",
            answer=_OBJECT,
        )  # fmt: skip
        | request_body(
            {"type": "object", "required": ["group_dn"], "properties": {"group_dn": _TEXT}}
        )  # fmt: skip
    },
}
