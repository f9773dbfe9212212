"""Reading a small request body (a form, a JSON object) without holding more than a limit."""

from __future__ import annotations

from starlette.requests import Request

from replica.errors import InvalidInput


async def read_limited(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it would exceed `limit` bytes.

    A declared Content-Length over the limit is refused before any byte is read;
    a chunked or lying body is cut off at the limit, so a 1 GiB POST costs at most
    `limit` bytes of memory.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise InvalidInput(f"request body larger than {limit} bytes", status=413)
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise InvalidInput(f"request body larger than {limit} bytes", status=413)
    return bytes(body)
