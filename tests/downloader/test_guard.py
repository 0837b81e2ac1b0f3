"""The address guard: only http(s), only public addresses, and connections go to the address that was checked."""

from __future__ import annotations

import pytest

from downloader.errors import BlockedURL, FetchError
from downloader.guard import Guard, address_problem, check_url
from downloader.options import DownloadOptions
from downloader.stage import download_images
from scraper.candidate import Candidate


@pytest.mark.parametrize(
    ("ip", "problem"),
    [
        ("127.0.0.1", "loopback"),
        ("127.8.9.10", "loopback"),
        ("10.1.2.3", "private"),
        ("172.16.5.4", "private"),
        ("192.168.0.1", "private"),
        ("169.254.169.254", "link-local"),
        ("224.0.0.251", "multicast"),
        ("240.0.0.1", "reserved"),
        ("0.0.0.0", "unspecified"),
        ("100.64.0.1", "non-public"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("fd00::1", "private"),
        ("ff02::1", "multicast"),
        ("::", "unspecified"),
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:10.0.0.1", "private"),
        ("2002:7f00:1::1", "loopback"),
        ("8.8.8.8", None),
        ("2606:4700:4700::1111", None),
    ],
)
def test_address_problem(ip, problem):
    assert address_problem(ip) == problem


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://example.com/a.jpg", "gopher://x/", "/relative.jpg"])
def test_only_http_and_https(url):
    with pytest.raises(BlockedURL):
        check_url(url)


def test_any_private_address_refuses_the_host():
    guard = Guard(False, resolver=lambda host, port: ["8.8.8.8", "10.0.0.7"])
    with pytest.raises(BlockedURL, match="10.0.0.7, a private address"):
        guard.addresses("mixed.example", 80)


def test_allow_private_and_trusted_hosts_skip_the_check():
    resolver = lambda host, port: ["127.0.0.1"]  # noqa: E731
    assert Guard(True, resolver=resolver).addresses("any.example", 80) == ["127.0.0.1"]
    assert Guard(False, frozenset({"images.test"}), resolver).addresses("IMAGES.test", 80) == ["127.0.0.1"]
    with pytest.raises(BlockedURL, match="loopback"):
        Guard(False, frozenset({"images.test"}), resolver).addresses("other.test", 80)


def test_connection_goes_to_the_checked_address(image_server, tmp_path):
    """images.test exists only in our resolver: a download succeeding proves no second, unchecked lookup."""
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"] if host == "images.test" else []

    options = DownloadOptions(trusted_hosts=frozenset({"images.test"}), resolver=resolver, threads=1)
    url = f"http://images.test:{image_server.port}/img/checked.jpg"
    result = download_images(_feed([url]), 1, tmp_path, options)
    assert [image.image_url for image in result.images] == [url]
    assert lookups == ["images.test"]


def test_redirect_to_loopback_is_refused_with_the_guard_on(image_server, tmp_path):
    base = f"http://images.test:{image_server.port}"
    options = DownloadOptions(
        trusted_hosts=frozenset({"images.test"}), resolver=lambda host, port: ["127.0.0.1"], threads=2
    )
    urls = [f"{base}/img/fine.jpg", f"{base}/fault/local.jpg", f"{image_server.url}/img/direct.jpg"]
    result = download_images(_feed(urls), 3, tmp_path, options)
    reasons = {failure.url: failure.reason for failure in result.failures}
    assert [image.image_url for image in result.images] == [urls[0]]
    assert "127.0.0.1, a loopback address" in reasons[urls[1]]
    assert "127.0.0.1, a loopback address" in reasons[urls[2]]
    assert {failure.kind for failure in result.failures} == {"blocked"}


def test_from_config_keeps_the_guard_on_by_default():
    assert DownloadOptions.from_config({}).allow_private is False
    assert DownloadOptions.from_config({"ALLOW_PRIVATE_URLS": True}).allow_private is True


def _feed(urls):
    queue = iter([Candidate(image_url=url, source="test") for url in urls])
    return lambda count: [candidate for _, candidate in zip(range(count), queue, strict=False)]


def test_https_connections_go_through_the_guard_too(image_server, tmp_path):
    lookups = []

    def resolver(host, port):
        lookups.append((host, port))
        return ["10.0.0.8"]

    url = f"https://secure.test:{image_server.port}/img/tls.jpg"
    result = download_images(_feed([url]), 1, tmp_path, DownloadOptions(resolver=resolver, threads=1))
    assert lookups == [("secure.test", image_server.port)]
    assert "10.0.0.8, a private address" in result.failures[0].reason


def test_an_unknown_host_is_a_broken_link_not_a_blocked_one():
    def resolver(host, port):
        raise OSError("Name or service not known")

    with pytest.raises(FetchError, match="could not be found"):
        Guard(False, resolver=resolver).addresses("nowhere.invalid", 80)


def _certificate(name: str, folder):
    """A self-signed certificate for ``name`` and its key, as PEM files in ``folder``."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return cert_file, key_file


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 with a certificate for secure.test; it records the SNI and Host it was sent."""
    import ssl
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    cert_file, key_file = _certificate("secure.test", tmp_path)
    seen = {"sni": [], "host": []}

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            seen["host"].append(self.headers["Host"])
            body = bytes(range(256)) * 1200 if self.path == "/big" else b"hello"  # /big spans many TLS records
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_file, key_file)
    context.sni_callback = lambda sock, name, ctx: seen["sni"].append(name)
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    yield server.server_address[1], cert_file, seen
    server.shutdown()
    server.server_close()
    thread.join(timeout=10)


def test_the_crawlers_https_goes_to_the_checked_address_with_the_host_name_for_sni_and_the_certificate(tls_server):
    """secure.test exists only in our resolver: the TLS connection went to its checked address, named secure.test.
    (The download stage's client has the same test in test_client.py.)"""
    import requests

    from crawler.pages import GuardedAdapter

    port, cert_file, seen = tls_server
    lookups = []

    def resolver(host, port):
        lookups.append(host)
        return ["127.0.0.1"]

    session = requests.Session()
    session.mount("https://", GuardedAdapter(Guard(False, frozenset({"secure.test", "other.test"}), resolver), 2))
    try:
        for _ in range(2):
            response = session.get(f"https://secure.test:{port}/x", verify=str(cert_file), timeout=10)
            assert (response.status_code, response.content) == (200, b"hello")
        assert lookups == ["secure.test"]  # once, though two requests were made
        assert seen["sni"] == ["secure.test"] and seen["host"] == [f"secure.test:{port}"] * 2
        # The certificate is checked against the URL's host name, not the address connected to.
        with pytest.raises(requests.exceptions.SSLError, match="other.test"):
            session.get(f"https://other.test:{port}/x", verify=str(cert_file), timeout=10)
    finally:
        session.close()
