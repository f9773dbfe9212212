"""The login limiter and the hashing pool, and that every failed login costs the same."""

from __future__ import annotations

import asyncio
import threading

import pytest

from consensus import MetadataState
from proto import commands_pb2 as pb
from replica import pki
from replica.auth import passwords
from replica.auth.login_guard import HashingBusy, HashingPool, LoginLimiter
from replica.auth.service import AuthService
from replica.auth.tokens import TokenKeys
from replica.errors import TooManyRequests, Unauthorized


def _attempts(limiter: LoginLimiter, keys: list[str], n: int, failed: bool = True) -> list[int]:
    async def run() -> list[int]:
        out = []
        for _ in range(n):
            wait = await limiter.acquire(keys, patience_s=0.1)
            out.append(wait)
            if not wait:
                limiter.release(keys, failed)
        return out

    return asyncio.run(run())


def test_a_guesser_elsewhere_does_not_lock_the_user_out() -> None:
    limiter = LoginLimiter()
    assert _attempts(limiter, limiter.keys("moby", "10.0.0.66"), 6)[-1] > 0  # slowed
    assert _attempts(limiter, limiter.keys("moby", "10.0.0.7"), 1) == [0]  # the user is not


def test_an_address_is_limited_across_users_and_a_user_across_addresses() -> None:
    limiter = LoginLimiter()
    for i in range(20):
        assert _attempts(limiter, limiter.keys(f"user{i}", "10.0.0.66"), 1) == [0]
    assert _attempts(limiter, limiter.keys("user99", "10.0.0.66"), 1)[0] > 0
    for i in range(100):
        assert _attempts(limiter, limiter.keys("moby", f"10.1.{i // 4}.{i % 4}"), 1) == [0]
    assert _attempts(limiter, limiter.keys("moby", "10.9.9.9"), 1)[0] > 0


def test_successes_never_count() -> None:
    limiter = LoginLimiter()
    assert _attempts(limiter, limiter.keys("moby", "10.0.0.7"), 50, failed=False) == [0] * 50


def test_memory_stays_bounded_under_a_flood_of_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from replica.auth import login_guard

    monkeypatch.setattr(login_guard, "_MAX_TRACKED", 300)
    limiter = LoginLimiter()
    for i in range(2000):
        _attempts(limiter, limiter.keys(f"name{i}", f"10.2.{i // 250}.{i % 250}"), 1)
    assert len(limiter._failures) <= 300 + 3


@pytest.fixture
def auth(tmp_path) -> AuthService:  # type: ignore[no-untyped-def]
    state = MetadataState(str(tmp_path / "state"))
    state.apply(
        1,
        pb.Command(
            put_account=pb.PutAccount(
                name="moby",
                password_hash=passwords.hash_password("right password"),
                create_only=True,
            )
        ).SerializeToString(),
    )
    cert, key = pki.create_ca()
    return AuthService(state, TokenKeys(key, cert, "quorum-registry"), enabled=True)


def _count_scrypt(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []
    real = passwords.check_password

    def counting(secret: str, stored: str) -> bool:
        calls.append(threading.current_thread().name)
        return real(secret, stored)

    monkeypatch.setattr(passwords, "check_password", counting)
    return calls


@pytest.mark.parametrize("user", ["moby", "nobody"])
def test_every_failure_costs_the_same_whether_the_user_exists(
    auth: AuthService, monkeypatch: pytest.MonkeyPatch, user: str
) -> None:
    calls = _count_scrypt(monkeypatch)
    pat_shaped = "qreg_pat_0123456789ab_" + "s" * 43
    with pytest.raises(Unauthorized):
        asyncio.run(auth.login(user, pat_shaped, "10.0.0.1"))
    assert calls == []  # a PAT-shaped secret: one fast hash, always
    with pytest.raises(Unauthorized):
        asyncio.run(auth.login(user, "a wrong password", "10.0.0.1"))
    assert len(calls) == 1  # anything else: one scrypt, always
    assert calls[0].startswith("qreg-hash")  # on the hashing pool, not the default one


def test_concurrent_wrong_logins_cannot_exceed_the_limit(
    auth: AuthService, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _count_scrypt(monkeypatch)
    auth.hashing = HashingPool(workers=2, max_pending=1000)

    async def flood() -> list[str]:
        async def one(i: int) -> str:
            try:
                await auth.login("moby", f"wrong {i}", "10.0.0.66")
            except TooManyRequests:
                return "429"
            except Unauthorized:
                return "401"
            return "200"

        return await asyncio.gather(*(one(i) for i in range(40)))

    outcomes = asyncio.run(flood())
    assert outcomes.count("401") == 5 and outcomes.count("429") == 35
    assert len(calls) == 5  # refused attempts cost no hash at all
    # The right password from the user's own address still works.
    assert asyncio.run(auth.login("moby", "right password", "10.0.0.7")) == ("moby", "")


def test_concurrent_right_logins_all_succeed(auth: AuthService) -> None:
    """A CI job pulling twenty images at once logs in twenty times at once."""

    async def burst() -> list[tuple[str, str]]:
        return await asyncio.gather(
            *(auth.login("moby", "right password", "10.0.0.8") for _ in range(20))
        )

    assert asyncio.run(burst()) == [("moby", "")] * 20


def test_the_hashing_queue_is_bounded() -> None:
    pool = HashingPool(workers=1, max_pending=2)
    gate = threading.Event()

    async def scenario() -> None:
        first = asyncio.ensure_future(pool.run(gate.wait))
        second = asyncio.ensure_future(pool.run(gate.wait))
        await asyncio.sleep(0.05)
        with pytest.raises(HashingBusy) as refused:
            await pool.run(gate.wait)
        assert refused.value.status == 429 and refused.value.headers["Retry-After"] == "1"
        gate.set()
        await asyncio.gather(first, second)

    asyncio.run(scenario())
    pool.close()
