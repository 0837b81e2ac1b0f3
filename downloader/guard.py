"""Refuse URLs that lead to non-public addresses, and connect only to the address that was checked.

A stage resolves each host once, refuses it when *any* address is loopback, private, link-local, multicast,
reserved or otherwise not global (IPv4 and IPv6, including IPv4-mapped and 6to4 forms), and then connects every
connection to that host to those same checked addresses for the rest of the stage: there is no second lookup an
attacker's DNS could answer differently (no DNS-rebinding window), and no lookup per URL. TLS still verifies the
certificate against the host name. Because the check sits in the connection itself, it applies to the first
request and to every redirect alike.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable
from urllib.parse import urlsplit

from .errors import BlockedURL, DownloadError, FetchError

Resolver = Callable[[str, int], list[str]]


def address_problem(ip: str) -> str | None:
    """Return why ``ip`` may not be fetched (e.g. "loopback"), or None when it is a public address."""
    addr = ipaddress.ip_address(ip.split("%", 1)[0])
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = addr.ipv4_mapped or addr.sixtofour or (addr.teredo[1] if addr.teredo else None)
        if embedded is not None:
            return address_problem(str(embedded))
    for label, flag in (
        ("loopback", addr.is_loopback),
        ("link-local", addr.is_link_local),
        ("multicast", addr.is_multicast),
        ("unspecified", addr.is_unspecified),
        ("reserved", addr.is_reserved),
        ("private", addr.is_private),  # last: Python counts most of the above as private too
    ):
        if flag:
            return label
    if not addr.is_global:
        return "non-public"
    return None


def system_resolver(host: str, port: int) -> list[str]:
    """Return every address the system resolver gives for ``host``."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def check_url(url: str) -> None:
    """Refuse URLs that are not http(s) or have no host (addresses are checked when connecting)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise BlockedURL(f"only http and https URLs are fetched, not {parts.scheme or 'a relative URL'}")
    if not parts.hostname:
        raise BlockedURL("the URL has no host")


class Guard:
    """Resolve and check each host once for one download stage or crawl, and connect to the checked addresses."""

    def __init__(self, allow_private: bool, trusted_hosts: frozenset[str] = frozenset(), resolver=None) -> None:
        self.allow_private = allow_private
        self.trusted_hosts = frozenset(host.lower() for host in trusted_hosts)
        self.resolver: Resolver = resolver or system_resolver
        self._lock = threading.Lock()
        self._checked: dict[tuple[str, int], list[str] | DownloadError] = {}  # the answer for each host, once
        self._resolving: dict[tuple[str, int], threading.Lock] = {}

    def trusts(self, host: str, port: int) -> bool:
        """True when ``host`` (any port) or ``host:port`` is one of the trusted hosts."""
        return host.lower() in self.trusted_hosts or f"{host.lower()}:{port}" in self.trusted_hosts

    def addresses(self, host: str, port: int) -> list[str]:
        """Return the checked addresses of ``host``, resolved once per stage; refuse it when any is not public."""
        key = (host.lower(), port)
        with self._lock:
            one_at_a_time = self._resolving.setdefault(key, threading.Lock())
        with one_at_a_time:  # threads asking for the same host wait for the first lookup instead of repeating it
            answer = self._checked.get(key)
            if answer is None:
                try:
                    answer = self._resolve(host, port)
                except DownloadError as exc:
                    answer = exc
                self._checked[key] = answer
        if isinstance(answer, DownloadError):
            raise type(answer)(answer.reason)
        return answer

    def known(self, host: str, port: int) -> list[str] | None:
        """The checked addresses of ``host`` if it was resolved in this stage (None if not yet); raise its refusal."""
        answer = self._checked.get((host.lower(), port))
        if isinstance(answer, DownloadError):
            raise type(answer)(answer.reason)
        return answer

    def _resolve(self, host: str, port: int) -> list[str]:
        try:
            found = self.resolver(host, port)
        except OSError as exc:
            raise FetchError(f"the host {host} could not be found") from exc
        if not found:
            raise FetchError(f"the host {host} has no address")
        if self.allow_private or self.trusts(host, port):
            return found
        for ip in found:
            problem = address_problem(ip)
            if problem:
                raise BlockedURL(f"{host} resolves to {ip}, a {problem} address")
        return found

    def connect(self, host: str, port: int, timeout, socket_options) -> socket.socket:
        """Open a TCP connection to a checked address of ``host``."""
        error: OSError | None = None
        for ip in self.addresses(host, port):
            version = ipaddress.ip_address(ip.split("%", 1)[0]).version
            sock = socket.socket(socket.AF_INET6 if version == 6 else socket.AF_INET, socket.SOCK_STREAM)
            try:
                for level, name, value in socket_options or ():
                    sock.setsockopt(level, name, value)
                if isinstance(timeout, int | float):
                    sock.settimeout(timeout)
                sock.connect((ip, port))
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        assert error is not None
        raise error
