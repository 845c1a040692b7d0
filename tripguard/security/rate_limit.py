"""A per-key sliding-window limiter (in process; the account lockout in the database is shared)."""

from __future__ import annotations

import ipaddress
import threading
import time
from collections import deque
from collections.abc import Sequence

from starlette.requests import Request

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def client_address(request: Request, trusted_proxies: Sequence[Network]) -> str:
    """The address a limit should count: the peer, unless the peer is one of our trusted proxies; then the
    right-most X-Forwarded-For entry that is not a trusted proxy (entries to its left are the client's to
    forge). Anyone else's X-Forwarded-For is ignored. A hop written as `ip:port` or `[ipv6]:port` counts as
    its address; a hop that is no address at all (`unknown`, a name) is returned as written, so it counts
    apart and matches no network: never the proxy's own address, which an allow-list may trust."""
    peer = request.client.host if request.client else "unknown"
    if not trusted_proxies or not _trusted(peer, trusted_proxies):
        return peer
    hops = [h.strip() for h in ",".join(request.headers.getlist("x-forwarded-for")).split(",") if h.strip()]
    for hop in reversed(hops):
        address = _address_of(hop)
        if not _trusted(address, trusted_proxies):
            return address
    return peer


def _address_of(hop: str) -> str:
    """`hop` as an address (`203.0.113.7:51234` -> `203.0.113.7`, `[2001:db8::1]:443` -> `2001:db8::1`);
    anything else as written, at most 64 characters."""
    candidates = [hop]
    if hop.startswith("[") and "]" in hop:
        candidates.append(hop[1:hop.index("]")])
    elif hop.count(":") == 1:
        candidates.append(hop.split(":", 1)[0])
    for candidate in candidates:
        try:
            return str(ipaddress.ip_address(candidate))
        except ValueError:
            continue
    return hop[:64]


def _trusted(address: str, networks: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


class SlidingWindowLimiter:
    def __init__(self, *, limit: int, window_seconds: float) -> None:
        self.limit = limit
        self.window = window_seconds
        self._hits: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def hit(self, key: str) -> int | None:
        """Count one attempt; return seconds to wait when over the limit, else None."""
        now = time.monotonic()
        with self._lock:
            hits = self._hits.setdefault(key, deque())
            while hits and hits[0] <= now - self.window:
                hits.popleft()
            if len(hits) >= self.limit:
                return max(1, int(hits[0] + self.window - now) + 1)
            hits.append(now)
            if len(self._hits) > 100_000:  # bound memory under a spray of addresses
                self._hits = {k: v for k, v in self._hits.items() if v and v[-1] > now - self.window}
            return None
