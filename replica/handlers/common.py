"""What several handlers share: standard headers and pagination."""

from __future__ import annotations

from urllib.parse import urlencode

from starlette.requests import Request

from replica.errors import PaginationNumberInvalid

MAX_PAGE = 10000


def pagination(request: Request) -> tuple[int, str]:
    """The `n` and `last` query parameters. Without n, a page holds MAX_PAGE entries:
    the distribution spec lets a registry return fewer than asked and clients follow
    the Link header (docker, skopeo, oras and crane do), and a repository of a million
    tags must not make one request hold them all in memory."""
    raw = request.query_params.get("n")
    last = request.query_params.get("last", "")
    if raw is None or raw == "":
        return MAX_PAGE, last
    try:
        n = int(raw)
    except ValueError:
        raise PaginationNumberInvalid(detail={"n": raw[:50]}) from None
    if n < 0 or n > MAX_PAGE:
        raise PaginationNumberInvalid(f"n must be between 0 and {MAX_PAGE}", detail={"n": n})
    return n, last


def page(items: list[str], n: int, path: str) -> tuple[list[str], dict[str, str]]:
    """Trim a list fetched with limit n+1 to n, and the Link header when more remain."""
    if n == 0:
        return [], {}
    if len(items) <= n:
        return items, {}
    items = items[:n]
    link = f'<{path}?{urlencode({"n": n, "last": items[-1]})}>; rel="next"'
    return items, {"Link": link}
