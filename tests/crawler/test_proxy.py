"""The browsers' filtering proxy applies the address guard to every request: plain HTTP and CONNECT alike."""

from __future__ import annotations

import socket

import pytest
import requests

from crawler.proxy import FilteringProxy
from downloader.guard import Guard


@pytest.fixture
def proxy(site):
    handle = FilteringProxy(Guard(allow_private=False, trusted_hosts=frozenset({site.trusted}))).start()
    yield handle
    handle.stop()


def _get(proxy, url):
    with requests.Session() as session:
        session.trust_env = False
        with session.get(url, proxies={"http": proxy.url}, timeout=10) as response:
            return response.status_code, response.text


def test_the_trusted_site_passes_and_its_status_is_seen(proxy, fresh_site):
    status, text = _get(proxy, fresh_site.url + "robots.txt")
    assert status == 200 and "Disallow: /private/" in text
    _get(proxy, fresh_site.url + "nothing-here")
    assert proxy.status_of(fresh_site.url + "nothing-here") == 404


def test_another_loopback_port_is_refused(proxy, fresh_site):
    status, text = _get(proxy, fresh_site.other_url + "tracker.js")
    assert status == 403 and "loopback" in text
    assert fresh_site.requests == []
    assert proxy.refused[-1][0] == fresh_site.other_url + "tracker.js"


def test_connect_to_a_refused_address_gets_no_tunnel(proxy, fresh_site):
    with socket.create_connection(("127.0.0.1", proxy.server_address[1]), timeout=10) as client:
        client.sendall(f"CONNECT 127.0.0.1:{fresh_site.other_port} HTTP/1.1\r\n\r\n".encode())
        answer = client.recv(4096)
    assert answer.startswith(b"HTTP/1.1 403")
    assert fresh_site.requests == []
