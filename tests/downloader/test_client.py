"""The asyncio HTTP client against real servers on 127.0.0.1 that answer in exactly the bytes each test writes."""

from __future__ import annotations

import asyncio
import gzip
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from downloader.client import Client, ConnectionTrouble, Headers, request_target
from downloader.errors import FetchError, TooLarge
from downloader.fetch import Fetcher
from downloader.guard import Guard
from downloader.hosts import Hosts
from downloader.options import DownloadOptions
from tests.downloader.test_guard import tls_server  # noqa: F401  (a fixture)

Answer = Callable[[socket.socket, str], bool]  # (connection, request target) -> keep the connection open?


def _send(body: bytes, headers: str = "", status: str = "200 OK") -> Answer:
    def answer(conn: socket.socket, _target: str) -> bool:
        conn.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n{headers}\r\n".encode() + body)
        return "Connection: close" not in headers

    return answer


class Scripted:
    """A TCP server: each request's target picks its answer; it counts connections and requests."""

    def __init__(self, answers: dict[str, Answer]) -> None:
        self.answers = answers
        self.connections = 0
        self.requests: list[str] = []
        self.hosts: list[str] = []  # the Host header of each request
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.stopping = threading.Event()
        self.threads: list[threading.Thread] = []
        self.accepter = threading.Thread(target=self._accept, daemon=True)
        self.accepter.start()

    def _accept(self) -> None:
        self.sock.settimeout(0.1)
        while not self.stopping.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            self.connections += 1
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self.threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        conn.settimeout(10)
        with conn:
            reader = conn.makefile("rb")
            while not self.stopping.is_set():
                try:
                    line = reader.readline()
                except OSError:
                    return
                if not line:
                    return
                while (header := reader.readline()) not in (b"\r\n", b""):
                    name, _, value = header.decode("latin-1").partition(":")
                    if name.lower() == "host":
                        self.hosts.append(value.strip())
                target = line.split()[1].decode()
                self.requests.append(target)
                if not self.answers[target.split("?")[0]](conn, target):
                    return

    def stop(self) -> None:
        self.stopping.set()
        self.sock.close()
        self.accepter.join(timeout=10)
        for thread in self.threads:
            thread.join(timeout=10)


@contextmanager
def scripted(answers: dict[str, Answer]) -> Iterator[Scripted]:
    server = Scripted(answers)
    try:
        yield server
    finally:
        server.stop()


def _client(resolver=None, trusted: frozenset[str] = frozenset(), **kwargs) -> Client:
    return Client(Guard(True, trusted, resolver), max_idle=4, **kwargs)


async def _get_body(client: Client, url: str, read_timeout: float = 5.0) -> tuple[int, bytes]:
    response = await client.get(url, {"User-Agent": "test"}, 5.0, read_timeout)
    body = b"".join([piece async for piece in response.chunks(64 * 1024)])
    return response.status, body


async def _saved(client: Client, url: str, read_timeout: float = 5.0) -> bytes:
    """The body as ``Response.save`` hands it on (straight from the receive buffer for a body of known length)."""
    response = await client.get(url, {"User-Agent": "test"}, 5.0, read_timeout)
    pieces: list[bytes] = []
    await response.save(lambda piece: pieces.append(bytes(piece)), 64 * 1024)
    return b"".join(pieces)


def _run(coroutine):
    return asyncio.run(coroutine)


def test_bodies_by_length_chunked_and_to_the_end_of_the_connection_and_gzip_decoded():
    def chunked(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
                     b"5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: yes\r\n\r\n")
        return True

    def to_the_end(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.0 200 OK\r\n\r\nuntil the end")
        return False

    packed = gzip.compress(b"x" * 300_000)
    answers = {"/length": _send(b"exactly"), "/chunked": chunked, "/end": to_the_end,
               "/gzip": _send(packed, "Content-Encoding: gzip\r\n")}

    async def main(server: Scripted) -> list[tuple[int, bytes]]:
        client = _client()
        try:
            return [await _get_body(client, server.url + path) for path in ("/length", "/chunked", "/end", "/gzip")]
        finally:
            client.close()

    with scripted(answers) as server:
        got = _run(main(server))
    assert got[:3] == [(200, b"exactly"), (200, b"hello world"), (200, b"until the end")]
    assert got[3] == (200, b"x" * 300_000)


def test_keep_alive_reuses_one_connection_and_a_connection_closed_while_idle_is_retried_on_a_new_one():
    def once(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nonce")
        return False  # closed without saying so: the client finds out on its next request

    async def main(server: Scripted) -> list[tuple[int, bytes]]:
        client = _client()
        try:
            got = [await _get_body(client, f"{server.url}/same?{i}") for i in range(5)]
            got.append(await _get_body(client, f"{server.url}/once"))
            await asyncio.sleep(0.2)  # the close reaches the idle connection
            got.append(await _get_body(client, f"{server.url}/same?again"))
            return got
        finally:
            client.close()

    with scripted({"/same": _send(b"same"), "/once": once}) as server:
        got = _run(main(server))
        connections, requests = server.connections, list(server.requests)
    assert got == [(200, b"same")] * 5 + [(200, b"once"), (200, b"same")]
    assert connections == 2  # one for the first six answers, a new one after the server closed it
    assert requests[-1] == "/same?again" and requests.count("/same?again") == 1


def test_a_request_the_server_closes_on_unanswered_is_sent_again_once_on_a_new_connection():
    calls = []

    def closes_first(conn: socket.socket, target: str) -> bool:
        calls.append(target)
        if len(calls) == 1:
            return False  # read the request, then closed: the race of an idle timeout on the server
        return _send(b"second")(conn, target)

    async def main(server: Scripted) -> list[tuple[int, bytes]]:
        client = _client()
        try:
            return [await _get_body(client, f"{server.url}/same"), await _get_body(client, f"{server.url}/race")]
        finally:
            client.close()

    with scripted({"/same": _send(b"same"), "/race": closes_first}) as server:
        assert _run(main(server)) == [(200, b"same"), (200, b"second")]
        assert server.connections == 2 and calls == ["/race", "/race"]


def test_a_read_that_waits_too_long_fails_as_a_timeout_and_headers_have_a_size_limit():
    def stall(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly part")
        time.sleep(3)
        return False

    def huge_headers(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\n" + b"X-Filler: " + b"a" * 70_000 + b"\r\n\r\n")
        return False

    async def main(server: Scripted) -> list[str]:
        client = _client()
        reasons = []
        try:
            for path in ("/stall", "/huge"):
                started = time.monotonic()
                with pytest.raises(FetchError) as caught:
                    await _get_body(client, server.url + path, read_timeout=0.5)
                reasons.append(caught.value.reason)
                assert time.monotonic() - started < 2.5  # the watch looks every 0.25 s; the server stalls for 3
            return reasons
        finally:
            client.close()

    with scripted({"/stall": stall, "/huge": huge_headers}) as server:
        reasons = _run(main(server))
    assert reasons == ["timed out waiting for data", "the answer's headers are over 64 KB"]


def test_idle_connections_are_bounded_over_all_hosts(monkeypatch):
    import downloader.client as client_module

    monkeypatch.setattr(client_module, "MAX_IDLE_TOTAL", 3)
    names = [f"h{i}.test" for i in range(6)]

    async def main(server: Scripted) -> list[int]:
        client = Client(Guard(False, frozenset(names), lambda host, port: ["127.0.0.1"]), max_idle=4)
        counts = []
        try:
            for name in names:
                await _get_body(client, f"http://{name}:{server.port}/same")
                counts.append(sum(len(idle) for idle in client._idle.values()))
            await _get_body(client, f"http://{names[-1]}:{server.port}/same")  # the newest host's one is kept
            return counts
        finally:
            client.close()

    with scripted({"/same": _send(b"same")}) as server:
        assert _run(main(server)) == [1, 2, 3, 3, 3, 3]
        assert server.connections == 6


def test_an_international_host_name_is_sent_and_resolved_in_its_ascii_form():
    seen = []

    async def main(server: Scripted) -> tuple[int, bytes]:
        def resolver(host: str, port: int) -> list[str]:
            seen.append(host)
            return ["127.0.0.1"]

        client = Client(Guard(False, frozenset({"xn--bcher-kva.test"}), resolver), max_idle=1)
        try:
            return await _get_body(client, f"http://Bücher.test:{server.port}/same")
        finally:
            client.close()

    with scripted({"/same": _send(b"ok")}) as server:
        assert _run(main(server)) == (200, b"ok")
        assert server.hosts == [f"xn--bcher-kva.test:{server.port}"]
    assert seen == ["xn--bcher-kva.test"]


def test_a_refused_port_is_connection_trouble():
    with socket.create_server(("127.0.0.1", 0)) as placeholder:
        port = placeholder.getsockname()[1]
    client = _client()
    with pytest.raises(ConnectionTrouble, match="could not connect"):
        _run(_get_body(client, f"http://127.0.0.1:{port}/x"))


def test_https_goes_to_the_checked_address_with_the_host_name_for_sni_and_the_certificate(tls_server):  # noqa: F811
    port, cert_file, seen = tls_server
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    async def main() -> list[tuple[int, bytes]]:
        client = Client(Guard(False, frozenset({"secure.test", "other.test"}), resolver), max_idle=2,
                        ca_certs=str(cert_file))
        try:
            got = [await _get_body(client, f"https://secure.test:{port}/x") for _ in range(2)]
            # The certificate is checked against the URL's host name, not the address connected to.
            with pytest.raises(ConnectionTrouble, match="could not connect securely.*other.test"):
                await _get_body(client, f"https://other.test:{port}/x")
            return got
        finally:
            client.close()

    assert _run(main()) == [(200, b"hello")] * 2
    assert lookups == ["secure.test", "other.test"]  # each host once, though secure.test was asked twice
    assert seen["sni"] == ["secure.test", "other.test"] and seen["host"] == [f"secure.test:{port}"] * 2


def test_a_body_over_tls_is_handed_on_whole_too(tls_server):  # noqa: F811
    port, cert_file, _seen = tls_server

    async def main() -> list[bytes]:
        client = Client(Guard(False, frozenset({"secure.test"}), lambda host, port: ["127.0.0.1"]), max_idle=2,
                        ca_certs=str(cert_file))
        try:
            return [await _saved(client, f"https://secure.test:{port}/big"),
                    await _saved(client, f"https://secure.test:{port}/x")]
        finally:
            client.close()

    assert _run(main()) == [bytes(range(256)) * 1200, b"hello"]


def test_a_small_gzip_that_inflates_past_the_size_limit_is_refused():
    bomb = gzip.compress(b"\0" * (8 * 1024 * 1024))  # about 8 KB on the wire

    async def main(server: Scripted) -> None:
        client = _client()
        options = DownloadOptions(allow_private=True, max_bytes=1024 * 1024)
        fetcher = Fetcher(client, options, time.monotonic() + 60, Hosts(1, 1))
        try:
            with open("/dev/null", "wb") as out:
                await fetcher.fetch(f"{server.url}/bomb", out)
        finally:
            client.close()

    with scripted({"/bomb": _send(bomb, "Content-Encoding: gzip\r\n")}) as server:
        with pytest.raises(TooLarge, match="1 MB limit"):
            _run(main(server))


def test_headers_and_request_targets():
    headers = Headers([("X-Robots-Tag", "noai"), ("content-length", "5"), ("x-robots-tag", "noimageai")])
    assert headers["Content-Length"] == "5" and headers.get("X-ROBOTS-TAG") == "noai"
    assert headers.getlist("x-robots-tag") == ["noai", "noimageai"] and headers.get("missing") is None
    assert request_target("", "") == "/"
    assert request_target("/a b/é.jpg", "q=1&r=%20") == "/a%20b/%C3%A9.jpg?q=1&r=%20"


def test_a_body_of_known_length_is_handed_on_whole_and_the_next_answer_read_from_where_it_ends():
    """Larger than the receive buffer, in pieces with pauses, and the next answer on the same connection right
    after it: nothing of the next answer is taken as body, nothing of the body is lost."""
    body = bytes(range(256)) * 3000  # 768,000 bytes: three times the receive buffer

    def in_pieces(conn: socket.socket, _target: str) -> bool:
        conn.sendall(f"HTTP/1.1 200 OK\r\nContent-Length: {len(body)}\r\n\r\n".encode() + body[:1000])
        for start in range(1000, len(body), 100_000):
            time.sleep(0.01)
            conn.sendall(body[start:start + 100_000])
        return True

    async def main(server: Scripted) -> list[bytes]:
        client = _client()
        try:
            return [await _saved(client, f"{server.url}/big"), await _saved(client, f"{server.url}/small"),
                    await _saved(client, f"{server.url}/big")]
        finally:
            client.close()

    with scripted({"/big": in_pieces, "/small": _send(b"small")}) as server:
        assert _run(main(server)) == [body, b"small", body]
        assert server.connections == 1


def _reset(conn: socket.socket) -> None:
    conn.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # close sends RST
    conn.close()


@pytest.mark.parametrize(("path", "reason"), [
    ("/cut", "truncated: the connection closed before the whole body arrived"),
    ("/reset", "the connection was reset mid-download"),
    ("/stall", "timed out waiting for data"),
])
def test_a_body_handed_on_that_ends_early_fails_with_the_reason(path, reason):
    head = b"HTTP/1.1 200 OK\r\nContent-Length: 500000\r\n\r\n" + b"x" * 100_000

    def cut(conn: socket.socket, _target: str) -> bool:
        conn.sendall(head)
        return False

    def reset(conn: socket.socket, _target: str) -> bool:
        conn.sendall(head)
        time.sleep(0.2)  # the client is inside the body when the reset comes
        _reset(conn)
        return False

    def stall(conn: socket.socket, _target: str) -> bool:
        conn.sendall(head)
        time.sleep(1.2)  # past the 0.5 s read timeout and the watch's next look
        return False

    async def main(server: Scripted) -> None:
        client = _client()
        try:
            await _saved(client, server.url + path, read_timeout=0.5)
        finally:
            client.close()

    with scripted({"/cut": cut, "/reset": reset, "/stall": stall}) as server:
        with pytest.raises(FetchError) as caught:
            _run(main(server))
    assert caught.value.reason == reason


def test_what_the_sink_raises_ends_the_download_and_drops_its_connection(caplog):
    def big(conn: socket.socket, target: str) -> bool:
        return _send(b"y" * 600_000)(conn, target)

    async def main(server: Scripted) -> bytes:
        client = _client()
        seen = []

        def full_disk(piece: memoryview) -> None:
            seen.append(len(piece))
            if sum(seen) > 300_000:
                raise OSError(28, "No space left on device")

        try:
            response = await client.get(f"{server.url}/big", {}, 5.0, 5.0)
            with pytest.raises(OSError, match="No space left"):
                await response.save(full_disk, 64 * 1024)
            return await _saved(client, f"{server.url}/small")
        finally:
            client.close()

    with scripted({"/big": big, "/small": _send(b"after")}) as server, caplog.at_level("DEBUG", logger="asyncio"):
        assert _run(main(server)) == b"after"
        assert server.connections == 2  # the first connection was dropped mid-body
    assert not [record for record in caplog.records if record.levelname in ("ERROR", "CRITICAL")]


def test_bytes_past_the_end_of_a_body_are_not_taken_as_body_and_the_connection_is_not_reused():
    def too_long(conn: socket.socket, _target: str) -> bool:
        conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Length: 300000\r\n\r\n" + b"z" * 300_000 + b"EXTRA BYTES")
        return True

    async def main(server: Scripted) -> list[bytes]:
        client = _client()
        try:
            first = await _saved(client, f"{server.url}/long")
            await asyncio.sleep(0.1)  # the bytes after the body reach the idle connection
            return [first, await _saved(client, f"{server.url}/next")]
        finally:
            client.close()

    with scripted({"/long": too_long, "/next": _send(b"next")}) as server:
        assert _run(main(server)) == [b"z" * 300_000, b"next"]
        assert server.connections == 2
