"""Pages of tag lists and the catalog: bounded even when the client asks for no page."""

from __future__ import annotations

import pytest
from starlette.requests import Request

from replica.errors import PaginationNumberInvalid
from replica.handlers.common import MAX_PAGE, page, pagination


def request(query: str) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "query_string": query.encode()})


def test_without_n_a_page_is_bounded_and_links_to_the_rest() -> None:
    n, last = pagination(request(""))
    assert (n, last) == (MAX_PAGE, "")
    names = [f"t{i:06d}" for i in range(MAX_PAGE + 1)]  # fetched with limit n + 1
    shown, link = page(names, n, "/v2/a/b/tags/list")
    assert shown == names[:MAX_PAGE]
    assert link["Link"] == f'</v2/a/b/tags/list?n={MAX_PAGE}&last=t009999>; rel="next"'


def test_a_last_page_has_no_link_and_n_zero_is_empty() -> None:
    assert page(["a", "b"], 2, "/v2/_catalog") == (["a", "b"], {})
    assert page(["a"], 0, "/v2/_catalog") == ([], {})


@pytest.mark.parametrize("n", ["-1", str(MAX_PAGE + 1), "ten"])
def test_n_out_of_range_is_refused(n: str) -> None:
    with pytest.raises(PaginationNumberInvalid):
        pagination(request(f"n={n}"))
