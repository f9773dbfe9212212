"""Bearer tokens already verified here, so a client's next request skips the check.

Verifying an access token costs an ES256 signature check (~70 µs) and, for an
account's token, reads of the account and its personal access token: more than a
manifest GET itself. Clients send the same token for minutes, so each distinct token
is checked once and its claims kept until it expires, in a bounded LRU.

Revocation stays immediate: an entry holds the state's `accounts_generation` from
before its check, and the state moves that number on every applied change that can
void a token (a password change, an account's deletion, a PAT's revocation) and on a
restored snapshot. An entry from another generation is checked again, on every
replica as soon as it applies the change. Only tokens that passed are kept, so
garbage sent by an outsider costs a check each time and takes no room.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict

from replica.auth.tokens import Claims

MAX_ENTRIES = 10_000


class VerifiedTokens:
    def __init__(self, max_entries: int = MAX_ENTRIES) -> None:
        self._entries: OrderedDict[str, tuple[Claims, float, int]] = OrderedDict()
        self._max = max_entries
        self._lock = threading.Lock()  # the event loop and the thread pool both ask

    def get(self, token: str, generation: int) -> Claims | None:
        """The claims of a token verified at this generation and not yet expired."""
        with self._lock:
            entry = self._entries.get(token)
            if entry is None or entry[2] != generation or entry[1] <= time.time():
                return None
            self._entries.move_to_end(token)
            return entry[0]

    def put(self, token: str, claims: Claims, valid_until: float, generation: int) -> None:
        """Keep a token that passed every check at `generation` (read before the
        checks began) until `valid_until` (time.time() seconds)."""
        with self._lock:
            self._entries[token] = (claims, valid_until, generation)
            self._entries.move_to_end(token)
            while len(self._entries) > self._max:
                self._entries.popitem(last=False)

    def __len__(self) -> int:
        return len(self._entries)
