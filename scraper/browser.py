"""Start one headless Chromium for a job and always take it down again, children included."""

from __future__ import annotations

import functools
import logging
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import urllib3
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service

from .errors import ScraperError

log = logging.getLogger(__name__)

WINDOW_SIZE = "1400,1050"
USER_AGENT = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{major}.0.0.0 Safari/537.36"
FALLBACK_MAJOR = "156"  # the Debian 12 package this app is deployed with
TEMP_PREFIX = "aid-chromium-"
# Every browser process carries its owner's pid in this variable (chromedriver passes its environment on to
# Chromium), so browsers left behind by a process that was killed outright can be found and reaped.
OWNER_ENV = "AID_BROWSER_OWNER"


class BrowserUnavailable(ScraperError):
    """Chromium or chromedriver could not be started."""


@functools.lru_cache(maxsize=4)
def chromium_major_version(chrome_bin: str) -> str:
    """Return the major version of the installed Chromium, e.g. "156"."""
    try:
        out = subprocess.run([chrome_bin, "--version"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        out = ""
    match = re.search(r"(\d+)\.\d+\.\d+\.\d+", out)
    return match.group(1) if match else FALLBACK_MAJOR


def user_agent(chrome_bin: str) -> str:
    """A normal desktop user agent for the installed version: some engines answer `HeadlessChrome` with nothing."""
    return USER_AGENT.format(major=chromium_major_version(chrome_bin))


def _options(chrome_bin: str, user_data_dir: str, arguments: tuple[str, ...] = ()) -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = chrome_bin
    for argument in (
        "--headless=new",
        "--no-sandbox",  # containers run us as root, where the sandbox cannot start
        "--disable-dev-shm-usage",  # /dev/shm is tiny in containers
        "--disable-gpu",
        "--no-first-run",
        "--no-default-browser-check",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--lang=en-US",
        f"--window-size={WINDOW_SIZE}",
        f"--user-agent={user_agent(chrome_bin)}",
        f"--user-data-dir={user_data_dir}",
        *arguments,  # e.g. the crawler's filtering proxy
    ):
        options.add_argument(argument)
    # Thumbnails and fonts are not needed to read result data; skipping them makes pages load faster.
    options.add_experimental_option("prefs", {"profile.managed_default_content_settings.images": 2})
    options.page_load_strategy = "normal"
    return options


def _process_table() -> dict[int, tuple[int, str]]:
    """Map pid -> (parent pid, command line) from /proc, so no extra dependency is needed."""
    table: dict[int, tuple[int, str]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        # The command name in stat is in parentheses and may contain spaces: split after the last ")".
        fields = stat[stat.rfind(")") + 2 :].split()
        table[int(entry.name)] = (int(fields[1]), cmdline)
    return table


def _descendants(root: int, table: dict[int, tuple[int, str]]) -> set[int]:
    found: set[int] = set()
    frontier = [root]
    while frontier:
        parent = frontier.pop()
        for pid, (ppid, _) in table.items():
            if ppid == parent and pid not in found:
                found.add(pid)
                frontier.append(pid)
    return found


class Browser:
    """A started Chromium with its driver; `quit()` leaves no process and no profile folder behind."""

    def __init__(self, chrome_bin: str, chromedriver: str, *, page_timeout: float = 20.0,
                 arguments: tuple[str, ...] = ()) -> None:
        reap_orphans()
        self.user_data_dir = tempfile.mkdtemp(prefix=f"{TEMP_PREFIX}{os.getpid()}-")
        self._service = Service(executable_path=chromedriver, env={**os.environ, OWNER_ENV: str(os.getpid())})
        try:
            options = _options(chrome_bin, self.user_data_dir, arguments)
            self.driver = webdriver.Chrome(service=self._service, options=options)
        except (WebDriverException, OSError) as exc:
            self._cleanup_processes()
            shutil.rmtree(self.user_data_dir, ignore_errors=True)
            raise BrowserUnavailable(f"could not start Chromium: {exc}") from exc
        self.driver.set_page_load_timeout(page_timeout)
        self.driver.set_script_timeout(page_timeout)
        self.page_timeout = page_timeout

    @property
    def pids(self) -> set[int]:
        """Every live process of this browser: chromedriver, Chromium and their children."""
        table = _process_table()
        pids = {pid for pid, (_, cmd) in table.items() if self.user_data_dir in cmd}
        process = getattr(self._service, "process", None)
        if process is not None and process.pid in table:
            pids.add(process.pid)
            pids |= _descendants(process.pid, table)
        for pid in list(pids):
            pids |= _descendants(pid, table)
        return pids

    def quit(self) -> None:
        """Quit the driver, then kill whatever survived it, then delete the temporary profile."""
        before = self.pids
        try:
            self.driver.quit()
        except (WebDriverException, OSError, urllib3.exceptions.HTTPError) as exc:
            # A dead chromedriver answers with a refused connection or urllib3's MaxRetryError: kill what is left.
            log.warning("driver.quit() failed, killing the browser: %s", exc)
        self._cleanup_processes(before)
        shutil.rmtree(self.user_data_dir, ignore_errors=True)

    def _cleanup_processes(self, known: set[int] | None = None) -> None:
        survivors = ((known or set()) | self.pids) - {os.getpid()}
        grace = time.monotonic() + 0.5  # a clean quit usually finishes within this
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            survivors = {pid for pid in survivors if _alive(pid)}
            if not survivors:
                return
            if time.monotonic() > grace:
                for pid in survivors:
                    _kill(pid)
            time.sleep(0.05)
        log.error("browser processes still alive after kill: %s", sorted(survivors))


def _alive(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat[stat.rfind(")") + 2 :].startswith("Z"):
        try:  # chromedriver is our own child: reap it
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
        return False
    return True


def _kill(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _owner(pid: int) -> int | None:
    """The pid in a process's OWNER_ENV variable, or None when it has none (or is not ours to read)."""
    try:
        environ = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return None
    prefix = f"{OWNER_ENV}=".encode()
    for item in environ.split(b"\0"):
        if item.startswith(prefix):
            try:
                return int(item[len(prefix):])
            except ValueError:
                return None
    return None


def reap_orphans() -> int:
    """Kill browser processes whose owner died without quitting them (SIGKILL, out of memory); return how many.

    Called before every browser start and by the app's periodic upkeep. Their profile folders are deleted too.
    """
    table = _process_table()
    orphans: set[int] = set()
    for pid in table:
        owner = _owner(pid)
        if owner is not None and owner != os.getpid() and not _alive(owner):
            # Chromium starts its helpers (zygotes, GPU, renderers) with a clean environment: take them by descent.
            orphans |= {pid} | _descendants(pid, table)
    for pid in orphans:
        _kill(pid)
    deadline = time.monotonic() + 5  # a killed Chromium may still write to its profile for a moment
    while any(_alive(pid) for pid in orphans) and time.monotonic() < deadline:
        time.sleep(0.05)
    # The killed browsers' profile folders, and any other folder named aid-chromium-<pid>-... of a dead owner.
    folders = {Path(m.group(1)) for pid in orphans
               if (m := re.search(r"--user-data-dir=(\S+)", table.get(pid, (0, ""))[1]))}
    for folder in Path(tempfile.gettempdir()).glob(f"{TEMP_PREFIX}*-*"):
        named = folder.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if named.isdigit() and int(named) != os.getpid() and not _alive(int(named)):
            folders.add(folder)
    for folder in folders:
        if folder.name.startswith(TEMP_PREFIX):
            shutil.rmtree(folder, ignore_errors=True)
    if orphans:
        log.warning("killed %d browser processes left by processes that died", len(orphans))
    return len(orphans)


def start(chrome_bin: str = "/usr/bin/chromium", chromedriver: str = "/usr/bin/chromedriver", **kwargs) -> Browser:
    """Start a headless Chromium with a fresh temporary profile."""
    return Browser(chrome_bin, chromedriver, **kwargs)
