"""The web UI's pages for organizations, teams, users and a user's profile (DTR's
laboratory flow: organization, teams, members, repositories granted to teams)."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from consensus import accounts, caches
from replica.auth import permissions
from replica.ui.pages import Page
from replica.ui.views import when

ROLES = ("none", "read-only", "read-write", "admin")


def _org_repositories(page: Page, org: str) -> list[str]:
    state = page.ctx.registry.state
    names = set(state.view(accounts.declared_repositories)) | set(
        state.repositories("", None, lambda txn, name: name.startswith(org + "/"))
    )
    return sorted(n for n in names if n.startswith(org + "/"))


def _missing(page: Page, what: str) -> Response:
    return page.render("error.html", "Not found", status=404, message=what)


async def organizations(request: Request, page: Page) -> Response:
    state = page.ctx.registry.state
    orgs = [
        {
            "name": a.name,
            "teams": len(state.view(accounts.teams, a.name)),
            "repositories": len(_org_repositories(page, a.name)),
        }
        for a in state.view(accounts.accounts)
        if a.is_org
    ]
    return page.render("organizations.html", "Organizations", "/orgs", orgs=orgs)


async def organization(request: Request, page: Page) -> Response:
    org = request.path_params["org"]
    state = page.ctx.registry.state
    account = state.view(accounts.account, org)
    if account is None or not account.is_org:
        return _missing(page, f"There is no organization named {org}.")
    tab = "repositories" if request.query_params.get("tab") == "repositories" else "teams"
    teams = [
        {"name": t, "members": state.view(accounts.team_members, org, t)}
        for t in state.view(accounts.teams, org)
    ]
    repositories = []
    for name in _org_repositories(page, org):
        if "pull" not in state.view(permissions.actions, page.user, name):
            continue
        settings = state.view(accounts.repository, name)
        access = state.view(accounts.team_access, name)
        repositories.append(
            {
                "name": name,
                "visibility": settings.visibility if settings else "private",
                "access": [f"{team}: {level}" for (_, team), level in sorted(access.items())],
            }
        )
    return page.render(
        "organization.html",
        org,
        "/orgs",
        org=org,
        tab=tab,
        teams=teams,
        repositories=repositories,
        can_manage=bool(state.view(permissions.manages_org, page.user, org)),
    )


async def team(request: Request, page: Page) -> Response:
    org, name = request.path_params["org"], request.path_params["team"]
    state = page.ctx.registry.state
    if name not in state.view(accounts.teams, org):
        return _missing(page, f"{org} has no team named {name}.")
    access = []
    org_repositories = _org_repositories(page, org)
    for repository in org_repositories:
        level = state.view(accounts.team_access, repository).get((org, name))
        if level:
            access.append((repository, level))
    members = state.view(accounts.team_members, org, name)
    users = [
        a.name for a in state.view(accounts.accounts) if not a.is_org and a.name not in members
    ]
    return page.render(
        "team.html",
        f"{org}/{name}",
        "/orgs",
        org=org,
        team=name,
        members=members,
        users=users,
        access=access,
        org_repositories=[r.split("/", 1)[1] for r in org_repositories],
        can_manage=bool(state.view(permissions.manages_org, page.user, org)),
    )


async def users(request: Request, page: Page) -> Response:
    listed = [
        {"name": a.name, "role": a.global_role or "none"}
        for a in page.ctx.registry.state.view(accounts.accounts)
        if not a.is_org
    ]
    return page.render("users.html", "Users", "/users", users=listed, roles=ROLES)


async def profile(request: Request, page: Page) -> Response:
    name = request.path_params["name"]
    state = page.ctx.registry.state
    if name != page.user and not page.is_admin:
        return page.render(
            "error.html",
            "Not allowed",
            status=403,
            message="Only the user and administrators see this page.",
        )
    account = state.view(accounts.account, name)
    if account is None or account.is_org:
        return _missing(page, f"There is no user named {name}.")
    tokens: list[dict[str, Any]] = [
        {
            "id": t.token_id,
            "name": t.name,
            "created": when(t.created_ms),
            "expires": when(t.expires_ms) if t.expires_ms else "never",
        }
        for t in state.view(accounts.access_tokens, name)
    ]
    preferred = state.view(caches.preference, name)
    return page.render(
        "profile.html",
        name,
        "/users" if name != page.user else "",
        name=name,
        role=account.global_role or "none",
        teams=[f"{o}/{t}" for o, t in state.view(accounts.memberships, name)],
        tokens=tokens,
        caches=[c.name for c in state.view(caches.caches)],
        cache=preferred.name if preferred else "",
    )
