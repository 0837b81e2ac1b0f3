"""A local filtering proxy for the crawl's browsers: every request they make passes the address guard.

Chromium is started with ``--proxy-server`` pointing here and ``--proxy-bypass-list=<-loopback>`` (without it,
loopback addresses would bypass the proxy). Plain HTTP requests arrive in absolute form and are forwarded to the
checked address of their host; HTTPS arrives as ``CONNECT host:port`` and is tunnelled to the checked address
(TLS stays end to end). A host the guard refuses gets ``403`` and is listed in ``refused``; the browser's page,
its redirects, scripts, frames and images are all requests here, so none of them can reach a refused address.
The status of each plain-HTTP answer is remembered (a bounded table) so that a worker can see a 429 or 503.
"""

from __future__ import annotations

import logging
import select
import socket
import socketserver
import threading
from collections import OrderedDict
from urllib.parse import urlsplit

from downloader.errors import DownloadError
from downloader.guard import Guard

logger = logging.getLogger(__name__)

MAX_HEAD = 64 * 1024
IDLE_SECONDS = 30.0
_STATUSES = 1000  # statuses remembered


class _Handler(socketserver.BaseRequestHandler):
    server: FilteringProxy

    def handle(self) -> None:
        client: socket.socket = self.request
        client.settimeout(IDLE_SECONDS)
        try:
            head, body = _read_head(client)
            if not head:
                return
            line, _, rest = head.partition(b"\r\n")
            method, target, _version = line.decode("latin-1").split(" ", 2)
            if method.upper() == "CONNECT":
                host, _, port_text = target.rpartition(":")
                self._tunnel(client, host.strip("[]"), int(port_text or 443), None, target)
                return
            parts = urlsplit(target)
            if parts.scheme != "http" or not parts.hostname:
                client.sendall(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
                return
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            headers = [h for h in rest.split(b"\r\n") if h and not h.lower().startswith(
                (b"proxy-connection:", b"connection:", b"keep-alive:"))]
            upstream_head = b"\r\n".join([f"{method} {path} HTTP/1.1".encode("latin-1"), *headers,
                                          b"Connection: close", b"", b""]) + body
            self._tunnel(client, parts.hostname, parts.port or 80, upstream_head, target)
        except (OSError, ValueError) as exc:
            logger.debug("proxy: %s", exc)
        finally:
            client.close()

    def _tunnel(self, client: socket.socket, host: str, port: int, head: bytes | None, target: str) -> None:
        proxy = self.server
        try:
            addresses = proxy.guard.addresses(host, port)
        except DownloadError as exc:
            proxy.note_refused(target, exc.reason)
            body = f"blocked by the address guard: {exc.reason}".encode()
            client.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Type: text/plain\r\nConnection: close\r\n"
                           + f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
            return
        upstream = socket.create_connection((addresses[0], port), timeout=IDLE_SECONDS)
        try:
            if head is None:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            else:
                upstream.sendall(head)
            _pipe(client, upstream, proxy, target if head is not None else None)
        finally:
            upstream.close()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes]:
    """Return the request head (without its blank line) and whatever of the body came with it."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(8192)
        if not chunk:
            return b"", b""
        data += chunk
        if len(data) > MAX_HEAD:
            raise ValueError("request head too large")
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def _pipe(client: socket.socket, upstream: socket.socket, proxy: FilteringProxy, target: str | None) -> None:
    sockets = [client, upstream]
    first = target is not None
    while True:
        readable, _, _ = select.select(sockets, [], [], IDLE_SECONDS)
        if not readable or proxy.stopping.is_set():
            return
        for sock in readable:
            data = sock.recv(64 * 1024)
            if not data:
                return
            if sock is upstream and first:
                first = False
                proxy.note_status(target or "", data)
            (upstream if sock is client else client).sendall(data)


class FilteringProxy(socketserver.ThreadingTCPServer):
    """The proxy of one crawl: start with ``start()``, point browsers at ``url``, ``stop()`` at the end."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, guard: Guard) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.guard = guard
        self.stopping = threading.Event()
        self.refused: list[tuple[str, str]] = []
        self._statuses: OrderedDict[str, int] = OrderedDict()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def browser_arguments(self) -> tuple[str, ...]:
        """Chromium flags that send every request, loopback included, through this proxy."""
        return (f"--proxy-server={self.url}", "--proxy-bypass-list=<-loopback>")

    def start(self) -> FilteringProxy:
        self._thread.start()
        return self

    def note_refused(self, target: str, reason: str) -> None:
        with self._lock:
            if len(self.refused) < 10_000:
                self.refused.append((target, reason))
        logger.info("proxy refused %s: %s", target, reason)

    def note_status(self, target: str, first_bytes: bytes) -> None:
        bits = first_bytes.split(b" ", 2)
        if len(bits) >= 2 and bits[1].isdigit():
            with self._lock:
                self._statuses[target] = int(bits[1])
                self._statuses.move_to_end(target)
                while len(self._statuses) > _STATUSES:
                    self._statuses.popitem(last=False)

    def status_of(self, url: str) -> int | None:
        """The status of the last plain-HTTP answer for ``url`` through this proxy, if remembered."""
        with self._lock:
            return self._statuses.get(url)

    def stop(self) -> None:
        self.stopping.set()
        self.shutdown()
        self.server_close()
        self._thread.join(timeout=5)
