"""Behind a trusted proxy, a forwarded client address written as ip:port is that address, and a hop that is no
address (`unknown`) is never the proxy's own: /metrics and the sign-in limits count the client, not the proxy."""

from __future__ import annotations

from fastapi import FastAPI
from starlette.requests import Request

from tripguard.security.rate_limit import client_address


def _request(peer: str, xff: str) -> Request:
    return Request({"type": "http", "client": (peer, 1234), "headers": [(b"x-forwarded-for", xff.encode())]})


def test_a_forwarded_hop_is_the_clients_address_never_the_proxys() -> None:
    from ipaddress import ip_network

    trusted = [ip_network("127.0.0.1/32")]
    assert client_address(_request("127.0.0.1", "203.0.113.7"), trusted) == "203.0.113.7"
    # Azure/IIS style "ip:port", or "unknown" (nginx realip off): the internet client becomes 127.0.0.1
    assert client_address(_request("127.0.0.1", "203.0.113.7:51234"), trusted) == "203.0.113.7"
    assert client_address(_request("127.0.0.1", "[2001:db8::1]:443"), trusted) == "2001:db8::1"
    assert client_address(_request("127.0.0.1", "unknown"), trusted) == "unknown"
    assert client_address(_request("127.0.0.1", "203.0.113.7, 127.0.0.1:9000"), trusted) == "203.0.113.7"


def test_metrics_are_not_served_to_a_forwarded_internet_client(app: FastAPI) -> None:
    from ipaddress import ip_network
    app.state.settings = app.state.settings.model_copy(update={"trusted_proxies": [ip_network("127.0.0.1/32")]})
    # TestClient's peer is "testclient"; emulate the proxy by asking the dependency directly
    from tripguard.web.health import MetricsRefused, metrics_reader
    req = _request("127.0.0.1", "203.0.113.7:51234")
    req.scope["app"] = app
    try:
        metrics_reader(req, None)
        served = True
    except MetricsRefused:
        served = False
    assert not served
