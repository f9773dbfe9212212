"""GET /v2/<name>/referrers/<digest>, with artifactType filtering."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from replica.errors import API_HEADERS
from replica.manifests import OCI_INDEX
from replica.names import check_digest
from replica.registry import Registry


async def list_referrers(registry: Registry, request: Request, name: str, digest: str) -> Response:
    check_digest(digest)
    wanted = request.query_params.get("artifactType")
    headers = {**API_HEADERS, "Content-Type": OCI_INDEX}
    descriptors = []
    for d in await registry.referrers(name, digest):
        if wanted and d.artifact_type != wanted:
            continue
        entry: dict[str, Any] = {"mediaType": d.media_type, "digest": d.digest, "size": d.size}
        if d.artifact_type:
            entry["artifactType"] = d.artifact_type
        if d.annotations_json:
            entry["annotations"] = json.loads(d.annotations_json)
        descriptors.append(entry)
    if wanted:
        headers["OCI-Filters-Applied"] = "artifactType"
    body = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": descriptors}
    return Response(json.dumps(body), status_code=200, headers=headers)
