"""Run a real single-node Apache Cassandra 5.0.8 on 127.0.0.1 for tests and development.

Usage (from the repository root)::

    .venv/bin/python scripts/cassandra_server.py fetch   # Maven copies the jars into scripts/cassandra/lib
    .venv/bin/python scripts/cassandra_server.py start [--port N] [--storage-port N] [--run-dir DIR]
    .venv/bin/python scripts/cassandra_server.py status [--run-dir DIR]
    .venv/bin/python scripts/cassandra_server.py stop [--run-dir DIR]

The same code is importable (``from scripts.cassandra_server import CassandraServer``); the pytest fixture in
``tests/fixtures/cassandra.py`` uses it. The module is not called ``cassandra.py`` on purpose: run as a script,
its folder comes first on ``sys.path`` and a ``cassandra.py`` there would shadow the DataStax driver.

What the first real start on this machine taught (Debian 12, 2 cores, OpenJDK 17.0.15, cassandra-all 5.0.8):

* The reference recipe worked unchanged: JVM flags from ``jvm17-server.args``, the jamm agent, ``cassandra.config``
  as a ``file://`` URL and ``cassandra.storagedir``. The JVM prints a 4-line ``setSecurityManager`` deprecation
  warning on stderr; that is expected on 17.
* Start to "answers CQL" took about 6 s (``Startup complete`` ~6 s after launch, fresh data dir); SIGTERM to exit
  about 7 s (the drain hook flushes). RSS about 1.5 GB with ``-Xms1G -Xmx1G``.
* Harmless warnings: jemalloc not preloaded, JMX off, ``vm.max_map_count`` low, read-ahead high, random token for a
  single vnode, and "Trigger directory doesn't exist" (we now pass ``cassandra.triggers_dir`` to silence it).
* Maven: ``-Djmc5.path=/tmp -Djmc6.path=/tmp -Dvisualvm.path=/tmp`` avoids the systemPath errors of the sjk poms;
  ``copy-dependencies`` gives 100 jars, 67 MB.

Every process is stopped by its own pid (SIGTERM, then SIGKILL after a grace period). The pidfile in the run
directory lets a later run remove an orphan left by an aborted one; the pid is only signalled when its command
line shows it is a CassandraDaemon using that same run directory.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

log = logging.getLogger(__name__)

HERE = Path(__file__).resolve().parent
CONF_DIR = HERE / "cassandra"
LIB_DIR = CONF_DIR / "lib"
DEFAULT_RUN_DIR = HERE.parent / "cassandra-run"
MAIN_CLASS = "org.apache.cassandra.service.CassandraDaemon"
START_TIMEOUT = 180.0
STOP_GRACE = 30.0


class ServerError(RuntimeError):
    """The Cassandra server could not be fetched, started or stopped."""


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that is free right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def fetch() -> Path:
    """Copy the Cassandra server jars from Maven Central into scripts/cassandra/lib (reuses ~/.m2; skipped if there)."""
    lib_dir = LIB_DIR
    lib_dir.mkdir(parents=True, exist_ok=True)
    # One fetch at a time: two test sessions (or workers) copying into the same folder make Maven fail.
    with (lib_dir / ".fetch.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        return _fetch_locked(lib_dir)


def _fetch_locked(lib_dir: Path) -> Path:
    if any(lib_dir.glob("cassandra-all-*.jar")) and any(lib_dir.glob("jamm-*.jar")):
        return lib_dir
    mvn = shutil.which("mvn")
    if mvn is None:
        raise ServerError("mvn not found: install Maven (scripts/setup --test) to fetch the Cassandra jars")
    cmd = [
        mvn, "-B", "-q", "-f", str(CONF_DIR / "pom.xml"), "dependency:copy-dependencies",
        "-Djmc5.path=/tmp", "-Djmc6.path=/tmp", "-Dvisualvm.path=/tmp",
    ]  # fmt: skip
    log.info("fetching Cassandra jars: %s", " ".join(cmd))
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=1800, check=False)
    if result.returncode != 0 or not any(lib_dir.glob("cassandra-all-*.jar")):
        raise ServerError(f"mvn failed ({result.returncode}):\n{result.stdout[-4000:]}\n{result.stderr[-4000:]}")
    return lib_dir


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


class CassandraServer:
    """One Cassandra node with its own run directory (data, logs, pidfile, ports); can be stopped and started again."""

    def __init__(
        self,
        run_dir: Path | str = DEFAULT_RUN_DIR,
        native_port: int | None = None,
        storage_port: int | None = None,
        lib_dir: Path | str = LIB_DIR,
        heap: str = "1G",
    ) -> None:
        self.run_dir = Path(run_dir).resolve()
        self.lib_dir = Path(lib_dir).resolve()
        self.heap = heap
        saved = self._read_state()
        # Ports stick to the run directory so a restart (the outage test) comes back where clients expect it.
        self.native_port = native_port or saved.get("native_port") or free_port()
        self.storage_port = storage_port or saved.get("storage_port") or free_port()
        self.process: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    @property
    def pidfile(self) -> Path:
        return self.run_dir / "cassandra.pid"

    @property
    def statefile(self) -> Path:
        return self.run_dir / "state.json"

    @property
    def host(self) -> str:
        return "127.0.0.1"

    def url(self, keyspace: str) -> str:
        return f"cassandra://{self.host}:{self.native_port}/{keyspace}"

    def _read_state(self) -> dict:
        try:
            return json.loads(self.statefile.read_text())
        except (OSError, ValueError):
            return {}

    def pid(self) -> int | None:
        """Return the pid of our server if it runs (per the pidfile and /proc), else None."""
        try:
            pid = int(self.pidfile.read_text().strip())
        except (OSError, ValueError):
            return None
        if not pid_alive(pid):
            return None
        cmdline = _cmdline(pid)
        if MAIN_CLASS not in cmdline or str(self.run_dir) not in cmdline:
            return None  # the pid was reused by something else: never signal it
        if self.process is None or self.process.pid != pid:
            return pid
        return pid if self.process.poll() is None else None

    def command(self) -> list[str]:
        jamm = sorted(self.lib_dir.glob("jamm-*.jar"))
        if not jamm or not any(self.lib_dir.glob("cassandra-all-*.jar")):
            raise ServerError(f"no Cassandra jars in {self.lib_dir}: run `scripts/cassandra_server.py fetch`")
        logs = self.run_dir / "logs"
        return [
            "java", f"@{CONF_DIR / 'jvm17-server.args'}",
            f"-Xms{self.heap}", f"-Xmx{self.heap}", "-XX:+ExitOnOutOfMemoryError",
            f"-javaagent:{jamm[-1]}",
            f"-Dcassandra.config={(CONF_DIR / 'cassandra.yaml').as_uri()}",  # must be a URL, not a path
            f"-Dcassandra.storagedir={self.run_dir}",
            "-Dcassandra-foreground=yes",  # otherwise the daemon closes stdout/stderr after setup
            f"-Dcassandra.logdir={logs}",
            f"-Dlogback.configurationFile={CONF_DIR / 'logback.xml'}",
            f"-Dcassandra.triggers_dir={self.run_dir / 'triggers'}",
            f"-Dcassandra.native_transport_port={self.native_port}",
            f"-Dcassandra.storage_port={self.storage_port}",
            "-Dcassandra.skip_wait_for_gossip_to_settle=0",  # a single node: saves ~8 s
            "-Dcassandra.unsafesystem=true",  # no blocking flushes of system tables: faster DDL
            "-Dcassandra.test.flush_local_schema_changes=false",
            "-cp", f"{self.lib_dir}/*", MAIN_CLASS,
        ]  # fmt: skip

    def start(self, timeout: float = START_TIMEOUT) -> float:
        """Start the node (or adopt the running one) and wait until it answers CQL; return the seconds it took."""
        if self.pid() is not None:
            self._wait_ready(time.monotonic() + timeout)
            return 0.0
        self.kill_orphan()
        for sub in ("logs", "triggers"):
            (self.run_dir / sub).mkdir(parents=True, exist_ok=True)
        self.statefile.write_text(json.dumps({"native_port": self.native_port, "storage_port": self.storage_port}))
        began = time.monotonic()
        with open(self.run_dir / "logs" / "stdout.log", "ab") as out:
            self.process = subprocess.Popen(  # noqa: S603 - fixed argv, no shell
                self.command(), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                cwd=self.run_dir, start_new_session=True,  # Ctrl-C in a test run does not hit the JVM first
            )  # fmt: skip
        self.pidfile.write_text(str(self.process.pid))
        try:
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        log.info("Cassandra answers CQL on 127.0.0.1:%d after %.1f s", self.native_port, self.start_seconds)
        return self.start_seconds

    def _exited(self) -> int | None:
        if self.process is not None:
            return self.process.poll()
        return None if self.pid() is not None else -1

    def _wait_ready(self, deadline: float) -> None:
        # 1. TCP accept on the native port, failing fast when the JVM dies.
        while True:
            code = self._exited()
            if code is not None:
                raise ServerError(f"Cassandra exited with {code} during start; see {self.log_tail()}")
            try:
                with socket.create_connection((self.host, self.native_port), timeout=1.0):
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise ServerError(f"Cassandra did not open port {self.native_port} in time; see {self.log_tail()}")
            time.sleep(0.25)
        # 2. A real CQL query.
        while True:
            try:
                version = self.query_release_version()
                log.info("Cassandra %s is ready", version)
                return
            except Exception as exc:  # noqa: BLE001 - any driver error means "not ready yet"
                last = exc
            code = self._exited()
            if code is not None:
                raise ServerError(f"Cassandra exited with {code} during start; see {self.log_tail()}")
            if time.monotonic() > deadline:
                raise ServerError(f"Cassandra did not answer CQL in time ({last!r}); see {self.log_tail()}")
            time.sleep(0.5)

    def query_release_version(self) -> str:
        from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile
        from cassandra.policies import DCAwareRoundRobinPolicy, TokenAwarePolicy

        profile = ExecutionProfile(
            load_balancing_policy=TokenAwarePolicy(DCAwareRoundRobinPolicy(local_dc="datacenter1")),
            request_timeout=10,
        )
        cluster = Cluster(
            [self.host], port=self.native_port, protocol_version=5, connect_timeout=5,
            execution_profiles={EXEC_PROFILE_DEFAULT: profile},
        )  # fmt: skip
        try:
            session = cluster.connect()
            return session.execute("SELECT release_version FROM system.local").one().release_version
        finally:
            cluster.shutdown()

    def log_tail(self, lines: int = 30) -> str:
        """Return the path of the system log and its last lines (for error messages)."""
        path = self.run_dir / "logs" / "system.log"
        out = self.run_dir / "logs" / "stdout.log"
        text = []
        for candidate in (path, out):
            try:
                text.append(f"{candidate}:\n" + "\n".join(candidate.read_text(errors="replace").splitlines()[-lines:]))
            except OSError:
                continue
        return "\n".join(text) or str(path)

    def stop(self, grace: float = STOP_GRACE) -> None:
        """Stop our node by its pid: SIGTERM (drains and flushes), then SIGKILL after ``grace`` seconds."""
        pid = self.process.pid if self.process is not None and self.process.poll() is None else self.pid()
        if pid is not None:
            self._terminate(pid, grace)
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                log.warning("Cassandra pid %d still not reaped", pid)
            self.process = None
        self.pidfile.unlink(missing_ok=True)

    def _terminate(self, pid: int, grace: float) -> None:
        log.info("stopping Cassandra pid %d", pid)
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline:
            if self.process is not None and self.process.pid == pid:
                if self.process.poll() is not None:
                    return
            elif not pid_alive(pid):
                return
            time.sleep(0.2)
        log.warning("Cassandra pid %d ignored SIGTERM for %.0f s: SIGKILL", pid, grace)
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            return

    def kill_orphan(self) -> None:
        """Stop a node an aborted run left behind in this run directory (identified by pidfile and command line)."""
        pid = self.pid()
        if pid is not None and (self.process is None or self.process.pid != pid):
            log.warning("stopping orphaned Cassandra pid %d from %s", pid, self.run_dir)
            self._terminate(pid, STOP_GRACE)
        self.pidfile.unlink(missing_ok=True)

    def status(self) -> dict:
        pid = self.pid()
        info = {"running": pid is not None, "pid": pid, "native_port": self.native_port, "run_dir": str(self.run_dir)}
        if pid is not None:
            try:
                info["release_version"] = self.query_release_version()
            except Exception as exc:  # noqa: BLE001 - reported, not raised
                info["error"] = repr(exc)
        return info


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("command", choices=["fetch", "start", "stop", "status"])
    parser.add_argument("--run-dir", default=str(DEFAULT_RUN_DIR), help="data, logs and pidfile (default: %(default)s)")
    parser.add_argument("--port", type=int, default=None, help="CQL port (default: 9042, or the run dir's last one)")
    parser.add_argument("--storage-port", type=int, default=None, help="internode port (default: 7000 or last)")
    parser.add_argument("--timeout", type=float, default=START_TIMEOUT, help="seconds to wait for CQL")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    if args.command == "fetch":
        began = time.monotonic()
        lib = fetch()
        log.info("%d jars in %s (%.1f s)", len(list(lib.glob("*.jar"))), lib, time.monotonic() - began)
        return 0
    run_dir = Path(args.run_dir)
    saved_ports = (run_dir / "state.json").exists()
    server = CassandraServer(
        run_dir,
        native_port=args.port or (None if saved_ports else 9042),
        storage_port=args.storage_port or (None if saved_ports else 7000),
    )
    if args.command == "start":
        fetch()
        seconds = server.start(timeout=args.timeout)
        server.process = None  # detach: the node keeps running after this CLI exits
        print(f"Cassandra running, pid {server.pid()}, started in {seconds:.1f} s")
        print(f"DATABASE_URL={server.url('aid')}")
        return 0
    if args.command == "stop":
        server.stop()
        print("Cassandra stopped")
        return 0
    info = server.status()
    print(json.dumps(info, indent=2))
    return 0 if info["running"] else 1


if __name__ == "__main__":
    sys.exit(main())
