#!/usr/bin/env python3
"""Directory sign-in benchmark, in one run, on three replicas over HTTPS:

- login latency (GET /auth/token with Basic credentials, one after another, median and
  90th percentile of 50) for a managed account and for a directory user (slapd over
  LDAPS on loopback);
- sync of a directory of N users and G groups (each group followed by a team of its
  own): the first sync (every account made), a sync with nothing changed, and one after
  1 % of the users left and every group changed a member.

  .venv/bin/python bench/ldap_bench.py [--users 10000] [--groups 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time

import httpx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from bench.registry_bench import print_figures
from tests.cluster import LocalCluster
from tests.directory import PEOPLE, SERVICE_DN, SERVICE_PASSWORD, Slapd, group_dn

PASSWORD = "bench-password-1"


def _say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def directory(work: str, users: int, groups: int) -> Slapd:
    rng = random.Random(7)
    names = [f"user{n:05d}" for n in range(users)]
    members = {f"group{g:03d}": rng.sample(names, min(40, users)) for g in range(groups)}
    members["registry-admins"] = names[:5]
    _say(f"writing a directory of {users} users and {groups} groups into slapd")
    return Slapd(os.path.join(work, "slapd"), {n: PASSWORD for n in names}, members).start()


def latencies(client: httpx.Client, user: str, password: str, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        started = time.perf_counter()
        r = client.get("/auth/token", params={"service": "quorum-registry"}, auth=(user, password))
        out.append((time.perf_counter() - started) * 1000)
        assert r.status_code == 200, r.text
    return out


def _summary(ms: list[float]) -> dict[str, float]:
    ordered = sorted(ms)
    return {
        "median_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[int(len(ordered) * 0.9) - 1], 2),
    }


def sync(admin: httpx.Client) -> dict[str, object]:
    started = time.perf_counter()
    r = admin.post("/api/v0/auth/ldap/sync", timeout=600)
    assert r.status_code == 200, r.text
    report = r.json()
    return {
        "seconds": round(time.perf_counter() - started, 2),
        "created": report["created"]["count"],
        "deactivated": report["deactivated"]["count"],
        "teams": report["teams"],
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--groups", type=int, default=500)
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--json", metavar="FILE")
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix="qreg-ldap-bench-")
    slapd = directory(work, args.users, args.groups)
    cluster = LocalCluster(os.path.join(work, "qreg"), replicas=3, tls=True).start()
    figures: dict[str, object] = {"users": args.users, "groups": args.groups}
    try:
        admin = httpx.Client(base_url=cluster.url, verify=cluster.verify, timeout=60,
                             auth=("admin", cluster.admin_password))  # fmt: skip
        r = admin.put("/api/v0/auth/ldap", json={
            "url": slapd.url, "ca_pem": slapd.ca_pem.decode(), "bind_dn": SERVICE_DN,
            "bind_password": SERVICE_PASSWORD, "user_base_dn": PEOPLE,
            "user_filter": "(objectClass=inetOrgPerson)", "username_attribute": "uid",
            "admin_group_dn": group_dn("registry-admins"), "keep_managed": True,
        })  # fmt: skip
        assert r.status_code == 200, r.text
        r = admin.post("/api/v0/accounts", json={"name": "managed", "password": PASSWORD})
        assert r.status_code == 201, r.text
        assert admin.post("/api/v0/accounts", json={"name": "bench", "is_org": True}).is_success
        _say(f"making {args.groups} teams that follow the groups")
        for g in range(args.groups):
            team = f"team{g:03d}"
            assert admin.post("/api/v0/accounts/bench/teams", json={"name": team}).is_success
            r = admin.put(f"/api/v0/accounts/bench/teams/{team}/directory-group",
                          json={"group_dn": group_dn(f"group{g:03d}")})  # fmt: skip
            assert r.status_code == 200, r.text
        assert admin.put("/api/v0/auth/mode", json={"mode": "ldap"}).status_code == 200
        _say("sync: first")
        figures["sync_first"] = sync(admin)
        _say("sync: nothing changed")
        figures["sync_unchanged"] = sync(admin)
        rng = random.Random(11)
        gone = rng.sample(range(5, args.users), args.users // 100)
        with slapd.admin() as conn:
            for n in gone:
                assert conn.delete(f"uid=user{n:05d},{PEOPLE}"), conn.result
        for g in range(args.groups):
            slapd.set_members(f"group{g:03d}", [f"user{n:05d}" for n in rng.sample(range(5), 3)])
        _say(f"sync: {len(gone)} users gone, every group changed")
        figures["sync_changed"] = sync(admin)
        with httpx.Client(base_url=cluster.urls[1], verify=cluster.verify, timeout=30) as c:
            _say(f"login latency, {args.runs} each")
            latencies(c, "managed", PASSWORD, 3)  # warm connections and caches
            managed = latencies(c, "managed", PASSWORD, args.runs)
            latencies(c, "user00001", PASSWORD, 3)
            directory_user = latencies(c, "user00001", PASSWORD, args.runs)
        figures["login_managed"] = _summary(managed)
        figures["login_ldap"] = _summary(directory_user)
        figures["login_ratio_ldap_to_managed"] = round(
            statistics.median(directory_user) / statistics.median(managed), 2
        )
        admin.close()
    finally:
        cluster.stop()
        slapd.stop()
        shutil.rmtree(work, ignore_errors=True)
    print_figures(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
