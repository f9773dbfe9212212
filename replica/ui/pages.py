"""The web UI's routes: sign in and out, and the pages. Reads go through views.py;
every change is a form that calls the management API (ui.js), so permissions are
checked in one place. A signed-out visitor is sent to the sign-in page; a page an
account may not see answers 403."""

from __future__ import annotations

import hmac
import logging
import os
import secrets
from typing import Any
from urllib.parse import parse_qs, quote

import jinja2
import swagger_ui_bundle  # type: ignore[import-untyped]
from starlette.requests import Request
from starlette.responses import HTMLResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from consensus import accounts, caches, policies, scans
from proto import commands_pb2 as pb
from replica.api.auth_settings import settings_json
from replica.api.cluster import member_views
from replica.api.policies import policy_json
from replica.api.same_origin import from_own_origin
from replica.api.scans import report_json
from replica.auth import permissions, sessions
from replica.auth.service import AuthService, client_address
from replica.bodies import read_limited
from replica.context import ReplicaContext, context
from replica.errors import RegistryError, TooManyRequests, Unauthorized
from replica.names import check_name
from replica.ui import views

log = logging.getLogger("qreg.ui")
_HERE = os.path.dirname(__file__)
_TEMPLATES = jinja2.Environment(
    loader=jinja2.FileSystemLoader(os.path.join(_HERE, "templates")),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_LOGIN_COOKIE = "qreg_login"  # the sign-in form's own CSRF token, before any session
NAV = [
    ("/", "Dashboard", False),
    ("/repositories", "Repositories", False),
    ("/orgs", "Organizations", False),
    ("/users", "Users", True),
    ("/activity", "Activity", False),
    ("/cluster", "Cluster", False),
    ("/settings", "Settings", True),
    ("/logs", "Logs", True),
    ("/api-docs", "API docs", False),
]


class Page:
    """Who is asking, and how to answer with a template."""

    def __init__(self, request: Request, user: str | None) -> None:
        self.request = request
        self.ctx: ReplicaContext = context(request)
        self.user = user
        auth = self.ctx.auth
        token = request.cookies.get(sessions.COOKIE, "")
        self.csrf = sessions.csrf_token(auth.keys, token) if auth and user else ""
        self.is_admin = bool(user) and bool(
            self.ctx.registry.state.view(permissions.is_admin, user)
        )

    def render(
        self, template: str, title: str, section: str = "", status: int = 200, **values: Any
    ) -> HTMLResponse:
        host = self.request.url.netloc
        auth = self.ctx.auth
        public = self.ctx.public_url
        if public:
            host = public.split("://", 1)[-1]
        html = _TEMPLATES.get_template(template).render(
            title=title,
            user=self.user,
            is_admin=self.is_admin,
            csrf=self.csrf,
            nav=NAV,
            section=section,
            host=host,
            open_registry=auth is not None and auth.settings().mode == "none",
            **values,
        )
        return HTMLResponse(html, status_code=status, headers=_HEADERS)


# The pages frame nothing and are framed by nothing; scripts come only from here.
_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data:; style-src 'self' "
    "'unsafe-inline'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}


def _secure(request: Request) -> bool:
    return request.url.scheme == "https"


def _auth(request: Request) -> AuthService:
    auth = context(request).auth
    if auth is None:
        raise RegistryError("the web UI needs the cluster CA key on this replica", status=404)
    return auth


def signed_in(request: Request) -> str | None:
    auth = _auth(request)
    claims = sessions.session_claims(auth.keys, request)
    if claims is None or not claims.subject or not auth.still_valid(claims):
        return None
    return claims.subject


def _to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target)}", status_code=303)


def page(handler: Any, admin: bool = False) -> Any:
    """A page for signed-in accounts (administrators only, if `admin`)."""

    async def call(request: Request) -> Response:
        user = signed_in(request)
        if user is None:
            return _to_login(request)
        page = Page(request, user)
        if admin and not page.is_admin:
            return page.render(
                "error.html",
                "Not allowed",
                status=403,
                message="Only administrators may see this page.",
            )
        try:
            return await handler(request, page)  # type: ignore[no-any-return]
        except RegistryError as e:  # the cluster's answer (no quorum, say), shown as a page
            return page.render("error.html", "Not available", status=e.status, message=e.message)
        except Exception:
            log.exception("the page %s failed", request.url.path)
            return page.render(
                "error.html",
                "Something went wrong",
                status=500,
                message="This page failed; the replica's log says why.",
            )

    return call


def _safe_next(value: str) -> str:
    """Only a path on this site: never //elsewhere or a scheme."""
    if not value.startswith("/") or value.startswith("//") or "\\" in value:
        return "/"
    return value


async def login_form(request: Request) -> Response:
    if signed_in(request):
        return RedirectResponse(_safe_next(request.query_params.get("next", "/")), status_code=303)
    return _loginpage(request, "", "", request.query_params.get("next", "/"))


def _loginpage(
    request: Request, error: str, username: str, next_path: str, status: int = 200
) -> Response:
    token = secrets.token_urlsafe(24)
    page = Page(request, None)
    page.csrf = token
    response = page.render(
        "login.html",
        "Sign in",
        status=status,
        error=error,
        username=username,
        next=_safe_next(next_path),
    )
    response.set_cookie(
        _LOGIN_COOKIE,
        token,
        max_age=3600,
        httponly=True,
        secure=_secure(request),
        samesite="strict",
    )
    return response


_FORM_MAX = 8192  # a sign-in or sign-out form; nothing bigger is read


async def _form(request: Request) -> dict[str, str]:
    """A small urlencoded form, read with a size limit (never a multipart upload)."""
    raw = await read_limited(request, _FORM_MAX)
    fields = parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True, max_num_fields=20)
    return {k: v[0] for k, v in fields.items()}


async def login(request: Request) -> Response:
    auth = _auth(request)
    form = await _form(request)
    username = str(form.get("username", ""))[:100]
    next_path = str(form.get("next", "/"))
    expected = request.cookies.get(_LOGIN_COOKIE, "")
    if (
        not from_own_origin(request)
        or not expected
        or not hmac.compare_digest(str(form.get("csrf", "")), expected)
    ):
        return _loginpage(
            request, "The sign-in form expired: please try again.", username, next_path, 403
        )
    try:
        user, _ = await auth.login(username, str(form.get("password", "")), client_address(request))
    except TooManyRequests as e:
        return _loginpage(request, e.message, username, next_path, 429)
    except Unauthorized:
        return _loginpage(request, "Invalid username or password.", username, next_path, 401)
    response = RedirectResponse(_safe_next(next_path), status_code=303)
    sessions.set_cookie(response, auth.keys.issue(user, [], kind="session"), _secure(request))
    response.delete_cookie(_LOGIN_COOKIE)
    return response


async def logout(request: Request) -> Response:
    auth = _auth(request)
    form = await _form(request)
    token = request.cookies.get(sessions.COOKIE, "")
    expected = sessions.csrf_token(auth.keys, token)
    if not from_own_origin(request) or not hmac.compare_digest(str(form.get("csrf", "")), expected):
        return Page(request, signed_in(request)).render(
            "error.html", "Not allowed", status=403, message="Sign out from the page's own menu."
        )
    response = RedirectResponse("/login", status_code=303)
    sessions.clear_cookie(response, _secure(request))
    return response


async def dashboard(request: Request, page: Page) -> Response:
    members, health = await member_views(request, page.ctx.registry, shared=True)
    return page.render(
        "dashboard.html",
        "Dashboard",
        "/",
        attention=views.attention(page.ctx, list(zip(members, health, strict=True))),
        counts=views.counts(page.ctx),
        recent=views.recent_pushes(page.ctx, page.user or ""),
    )


async def repositories(request: Request, page: Page) -> Response:
    q = request.query_params.get("q", "").strip()[:100]
    try:
        number = max(1, int(request.query_params.get("page", "1")))
    except ValueError:
        number = 1
    await page.ctx.registry.fresh()
    names, more = views.readable(page.ctx, page.user, q, number)
    values: dict[str, Any] = {
        "q": q,
        "page": number,
        "more": more,
        "total": None,
        "repositories": views.repository_rows(page.ctx, names),
        "namespaces": views.namespaces_for(page.ctx, page.user or ""),
    }
    template = (
        "repository_list.html" if request.query_params.get("fragment") else "repositories.html"
    )
    return page.render(template, "Repositories", "/repositories", **values)


async def repository(request: Request, page: Page) -> Response:
    p = request.path_params
    try:
        name = check_name(f"{p['namespace']}/{p['repo']}")
    except RegistryError:
        return page.render(
            "error.html", "Not found", status=404, message="There is no such repository."
        )
    state = page.ctx.registry.state
    await page.ctx.registry.fresh()
    allowed = state.view(permissions.actions, page.user, name)
    if "pull" not in allowed or not state.repository_exists(name):
        return page.render(
            "error.html",
            "Not found",
            status=404,
            message=f"No repository {name} that you may read.",
        )
    tab = (
        "settings"
        if request.query_params.get("tab") == "settings" and "delete" in allowed
        else "tags"
    )
    settings = state.view(accounts.repository, name)
    tags, more = views.tag_rows(page.ctx, name) if tab == "tags" else ([], False)
    return page.render(
        "repository.html",
        name,
        "/repositories",
        name=name,
        tab=tab,
        visibility=settings.visibility if settings else "private",
        tags=tags,
        more_tags=more,
        can_delete="delete" in allowed,
        can_admin="delete" in allowed,
        policy=policy_json(state.view(policies.policy, name)),
        team_access=[
            {"team": f"{org}/{team}", "access": level}
            for (org, team), level in sorted(state.view(accounts.team_access, name).items())
        ],
    )


async def scan_report(request: Request, page: Page) -> Response:
    p = request.path_params
    try:
        name = check_name(f"{p['namespace']}/{p['repo']}")
    except RegistryError:
        return page.render("error.html", "Not found", status=404, message="No such repository.")
    state = page.ctx.registry.state
    digest = (
        state.resolve(name, p["tag"])
        if "pull" in state.view(permissions.actions, page.user, name)
        else None
    )
    if digest is None:
        return page.render(
            "error.html",
            "Not found",
            status=404,
            message=f"No tag {p['tag']} of {name} that you may read.",
        )
    database = state.view(scans.database)
    report = report_json(
        state.view(scans.report, digest), digest, page.ctx.scanner, database.version
    )
    return page.render(
        "scan.html",
        f"{name}:{p['tag']}",
        "/repositories",
        name=name,
        tag=p["tag"],
        report=report,
        database=database.version,
        platforms=any(f.get("platform") for f in report["findings"]),
    )


async def settings(request: Request, page: Page) -> Response:
    gc_settings, runs = views.gc_settings(page.ctx)
    auth = page.ctx.auth
    directory = auth.directory if auth else None
    return page.render(
        "settings.html",
        "Settings",
        "/settings",
        gc=gc_settings,
        runs=runs,
        auth_enabled=bool(auth and auth.enabled),
        auth=settings_json(auth.settings() if auth else pb.AuthSettings()),
        last_sync=directory.last.json() if directory and directory.last else None,
        caches=page.ctx.registry.state.view(caches.caches),
        public_url=page.ctx.public_url,
    )


async def api_docs(request: Request, page: Page) -> Response:
    response = page.render("api_docs.html", "API docs", "/api-docs")
    return response


ROUTES = [
    Route("/", page(dashboard), methods=["GET"]),
    Route("/login", login_form, methods=["GET"]),
    Route("/login", login, methods=["POST"]),
    Route("/logout", logout, methods=["POST"]),
    Route("/repositories", page(repositories), methods=["GET"]),
    Route("/repositories/{namespace}/{repo}", page(repository), methods=["GET"]),
    Route("/repositories/{namespace}/{repo}/tags/{tag}/scan", page(scan_report), methods=["GET"]),
    Route("/settings", page(settings, admin=True), methods=["GET"]),
    Route("/api-docs", page(api_docs), methods=["GET"]),
    Mount("/ui/static", StaticFiles(directory=os.path.join(_HERE, "static")), name="ui-static"),
    Mount("/ui/swagger", StaticFiles(directory=swagger_ui_bundle.swagger_ui_path), name="swagger"),
]


def routes() -> list[BaseRoute]:
    """Every route of the UI (the account pages import this module, hence the late import)."""
    from replica.ui import account_pages as accounts_ui
    from replica.ui import activity_pages, cluster_pages

    return [
        Route("/cluster", page(cluster_pages.cluster), methods=["GET"]),
        Route("/activity", page(activity_pages.activity), methods=["GET"]),
        Route("/logs", page(cluster_pages.logs, admin=True), methods=["GET"]),
        Route("/orgs", page(accounts_ui.organizations), methods=["GET"]),
        Route("/orgs/{org}", page(accounts_ui.organization), methods=["GET"]),
        Route("/orgs/{org}/teams/{team}", page(accounts_ui.team), methods=["GET"]),
        Route("/users", page(accounts_ui.users, admin=True), methods=["GET"]),
        Route("/users/{name}", page(accounts_ui.profile), methods=["GET"]),
        *ROUTES,
    ]
