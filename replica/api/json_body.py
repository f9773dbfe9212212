"""Reading a management API request's JSON object, size-limited."""

from __future__ import annotations

import json
from typing import Any

from starlette.requests import Request

from replica.bodies import read_limited
from replica.errors import InvalidInput

MAX_BODY = 64 * 1024


async def read_body(request: Request) -> dict[str, Any]:
    raw = await read_limited(request, MAX_BODY)
    if not raw:
        return {}
    try:
        value = json.loads(raw)
    except ValueError:
        raise InvalidInput("the body is not JSON") from None
    if not isinstance(value, dict):
        raise InvalidInput("the body must be a JSON object")
    return value
