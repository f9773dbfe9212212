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


def test_a_guesser_elsewhere_does_not_lock_the_user_out() -> None:
    limiter = LoginLimiter()
    attacker = limiter.keys("moby", "10.0.0.66")
    for _ in range(5):
        assert limiter.reserve(attacker) == 0
    assert limiter.reserve(attacker) > 0                     # the guesser is slowed
    assert limiter.reserve(limiter.keys("moby", "10.0.0.7")) == 0  # the user is not


def test_an_address_is_limited_across_users_and_a_user_across_addresses() -> None:
    limiter = LoginLimiter()
    for i in range(20):
        assert limiter.reserve(limiter.keys(f"user{i}", "10.0.0.66")) == 0
    assert limiter.reserve(limiter.keys("user99", "10.0.0.66")) > 0
    for i in range(100):
        assert limiter.reserve(limiter.keys("moby", f"10.1.{i // 4}.{i % 4}")) == 0
    assert limiter.reserve(limiter.keys("moby", "10.9.9.9")) > 0


def test_a_success_gives_its_reservation_back() -> None:
    limiter = LoginLimiter()
    keys = limiter.keys("moby", "10.0.0.7")
    for _ in range(50):
        assert limiter.reserve(keys) == 0
        limiter.release(keys)


def test_memory_stays_bounded_under_a_flood_of_names(monkeypatch: pytest.MonkeyPatch) -> None:
    from replica.auth import login_guard
    monkeypatch.setattr(login_guard, "_MAX_TRACKED", 300)
    limiter = LoginLimiter()
    for i in range(2000):
        limiter.reserve(limiter.keys(f"name{i}", f"10.2.{i // 250}.{i % 250}"))
    assert len(limiter._attempts) <= 300 + 3


@pytest.fixture
def auth(tmp_path) -> AuthService:  # type: ignore[no-untyped-def]
    state = MetadataState(str(tmp_path / "state"))
    state.apply(1, pb.Command(put_account=pb.PutAccount(
        name="moby", password_hash=passwords.hash_password("right password"),
        create_only=True)).SerializeToString())
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
        auth: AuthService, monkeypatch: pytest.MonkeyPatch, user: str) -> None:
    calls = _count_scrypt(monkeypatch)
    pat_shaped = "qreg_pat_0123456789ab_" + "s" * 43
    with pytest.raises(Unauthorized):
        asyncio.run(auth.login(user, pat_shaped, "10.0.0.1"))
    assert calls == []                   # a PAT-shaped secret: one fast hash, always
    with pytest.raises(Unauthorized):
        asyncio.run(auth.login(user, "a wrong password", "10.0.0.1"))
    assert len(calls) == 1               # anything else: one scrypt, always
    assert calls[0].startswith("qreg-hash")  # on the hashing pool, not the default one


def test_concurrent_wrong_logins_cannot_exceed_the_limit(
        auth: AuthService, monkeypatch: pytest.MonkeyPatch) -> None:
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
    assert len(calls) == 5               # refused attempts cost no hash at all
    # The right password from the user's own address still works.
    assert asyncio.run(auth.login("moby", "right password", "10.0.0.7")) == ("moby", "")


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

