"""`make browser`: a headless Chromium from Debian, without root, to test the HTML viewer.

    python -m attn_jax.interp.browser --data_dir .data

Debian's `chromium` and `chromium-common`, and the shared libraries it needs that a
bare machine lacks (`LIBRARIES`, found with `ldd`), are `apt-get download`ed and
unpacked into `<data_dir>/debian/<package>/` by the corpora's own path
(`attn_jax.data.fetch.unpack_package`); chromium-common's resources are linked beside
the binary, and `launch` puts the libraries' folders on LD_LIBRARY_PATH. Only this
command downloads; a test finds the binary with `find_chromium` and fails with a
message naming `make browser` when it is missing.

`launch(root)` starts `chromium --headless --remote-debugging-pipe` and speaks the
DevTools protocol over the pipe (NUL-terminated JSON on the child's fds 3 and 4), so
no pip package is needed: `Browser.open(url)` returns a `Page` that can `evaluate`
JavaScript, `click` an element with real mouse events (the page's own handlers run, as
for a person), and `hover` over one. Uncaught page exceptions land in `Page.errors`.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import select
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from attn_jax.data import sources
from attn_jax.data.fetch import unpack_package

# What `ldd usr/lib/chromium/chromium` reports missing on a bare Debian 12 (bookworm)
# image, then what those libraries need in turn (libpulse0 -> libsndfile1 -> ...).
LIBRARIES = (
    "libopenh264-7",
    "libdouble-conversion3",
    "libharfbuzz-subset0",
    "libpulse0",
    "libflac12",
    "libopus0",
    "libxnvctrl0",
    "libminizip1",
    "libopenjp2-7",
    "libogg0",
    "libsndfile1",
    "libasyncns0",
    "libmp3lame0",
    "libmpg123-0",
    "libvorbis0a",
    "libvorbisenc2",
)
PACKAGES = ("chromium", "chromium-common", *LIBRARIES)
FLAGS = (
    "--headless",
    "--no-sandbox",  # root in containers, and no setuid chromium-sandbox unpacked
    "--disable-gpu",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-extensions",
    "--disable-background-networking",
    "--disable-component-update",
    "--mute-audio",
    "--window-size=1280,1024",
    "--remote-debugging-pipe",
)


class MissingBrowserError(FileNotFoundError):
    """Chromium is not unpacked under the data root; the message names `make browser`."""


def binary_path(root: str | Path) -> Path:
    return Path(root) / "debian" / "chromium" / "usr" / "lib" / "chromium" / "chromium"


def find_chromium(root: str | Path) -> Path:
    """The unpacked chromium binary under `root`, or MissingBrowserError naming the fix."""
    path = binary_path(root)
    if not path.exists() or not (path.parent / "resources.pak").exists():
        raise MissingBrowserError(
            f"Headless Chromium not found at {path}; run `make browser` "
            f"(python -m attn_jax.interp.browser --data_dir {root})."
        )
    return path


def library_path(root: str | Path) -> str:
    """LD_LIBRARY_PATH for the unpacked libraries: every folder holding one of their .so."""
    dirs = []
    for package in LIBRARIES:
        for so in sorted((Path(root) / "debian" / package).rglob("*.so*")):
            if so.parent not in dirs:
                dirs.append(so.parent)
    return os.pathsep.join(str(d) for d in dirs)


def browser_env(root: str | Path) -> dict:
    env = dict(os.environ)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (library_path(root), env.get("LD_LIBRARY_PATH", "")) if p
    )
    env.pop("DBUS_SESSION_BUS_ADDRESS", None)
    return env


def missing_libraries(root: str | Path) -> list[str]:
    """Shared libraries `ldd` cannot find for the unpacked chromium (empty when runnable)."""
    out = subprocess.run(
        ["ldd", str(binary_path(root))], env=browser_env(root), capture_output=True, text=True
    ).stdout
    return sorted({line.split()[0] for line in out.splitlines() if "not found" in line})


def fetch_chromium(root: str | Path) -> Path:
    """Downloads and unpacks chromium and `LIBRARIES` under `root`; returns the binary.

    Running it again does nothing once the binary and all its libraries are there.
    """
    root = Path(root)
    try:
        find_chromium(root)
        if not missing_libraries(root):
            return binary_path(root)
    except MissingBrowserError:
        pass
    for package in PACKAGES:
        print(f"unpacking {package}", flush=True)
        unpack_package(package, root)
    # chromium looks for its .pak/.dat/.so resources beside the (resolved) binary.
    common = root / "debian" / "chromium-common" / "usr" / "lib" / "chromium"
    for item in common.iterdir():
        link = binary_path(root).parent / item.name
        if link.is_symlink():
            link.unlink()
        if not link.exists():
            link.symlink_to(item)
    missing = missing_libraries(root)
    if missing:
        raise SystemExit(
            f"chromium still misses {missing}: add their Debian packages to "
            "attn_jax.interp.browser.LIBRARIES (`apt-cache search` the library name)."
        )
    return find_chromium(root)


class BrowserError(RuntimeError):
    """The browser died, timed out, or a DevTools call or page script failed."""


def _high_fd(fd: int) -> int:
    high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
    os.close(fd)
    return high


class Browser:
    """A headless chromium driven over --remote-debugging-pipe; use as a context manager."""

    def __init__(self, root: str | Path, timeout: float = 30.0):
        binary = find_chromium(root)
        self.timeout = timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="attn_browser_")
        self._log = open(Path(self._tmp.name) / "stderr.log", "w+b")  # noqa: SIM115
        # Our ends: we write commands that chromium reads on fd 3, it replies on fd 4.
        # All four are moved to fds >= 10 so the child's moves onto 3 and 4 cannot collide.
        cmd_r, self._cmd_w = map(_high_fd, os.pipe())
        self._out_r, out_w = map(_high_fd, os.pipe())
        # bash (not sh: dash cannot name fds above 9) moves the pipe ends to fds 3 and 4.
        shell = f'exec "$0" "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        args = [*FLAGS, f"--user-data-dir={self._tmp.name}/profile", "about:blank"]
        self.proc = subprocess.Popen(
            ["bash", "-c", shell, str(binary), *args],
            pass_fds=(cmd_r, out_w),
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=self._log,
            env=browser_env(root),
        )
        os.close(cmd_r)
        os.close(out_w)
        self._buf = b""
        self._next_id = 0
        self.events: list[dict] = []

    def __enter__(self) -> Browser:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def close(self) -> None:
        if self.proc.poll() is None:
            try:
                self._send({"id": -1, "method": "Browser.close"})
                self.proc.wait(timeout=5)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait()
        for fd in (self._cmd_w, self._out_r):
            try:
                os.close(fd)
            except OSError:
                pass
        self._log.close()
        self._tmp.cleanup()

    def _log_tail(self) -> str:
        self._log.flush()
        self._log.seek(0)
        lines = self._log.read().decode(errors="replace").splitlines()
        return "\n".join(lines[-15:])

    def _send(self, message: dict) -> None:
        os.write(self._cmd_w, json.dumps(message).encode() + b"\0")

    def _recv(self, deadline: float) -> dict:
        while b"\0" not in self._buf:
            left = deadline - time.monotonic()
            ready, _, _ = select.select([self._out_r], [], [], max(0.0, left))
            chunk = os.read(self._out_r, 1 << 20) if ready else b""
            if not chunk:
                why = "timed out" if not ready else f"exited ({self.proc.poll()})"
                raise BrowserError(f"chromium {why}; its log ends:\n{self._log_tail()}")
            self._buf += chunk
        raw, self._buf = self._buf.split(b"\0", 1)
        return json.loads(raw)

    def call(self, method: str, params: dict | None = None, session: str | None = None):
        """Sends one DevTools command and returns its result (events are kept in .events)."""
        self._next_id += 1
        message = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        self._send(message)
        deadline = time.monotonic() + self.timeout
        while True:
            reply = self._recv(deadline)
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error']}")
                return reply.get("result", {})
            if "method" in reply:
                self.events.append(reply)

    def open(self, url: str) -> Page:
        """A new tab showing `url`, once its document has loaded."""
        target = self.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = self.call("Target.attachToTarget", {"targetId": target, "flatten": True})[
            "sessionId"
        ]
        page = Page(self, session)
        self.call("Runtime.enable", session=session)
        self.call("Page.enable", session=session)
        self.call("Page.navigate", {"url": url}, session)
        deadline = time.monotonic() + self.timeout
        while page.evaluate("document.readyState") != "complete" or page.evaluate(
            "location.href"
        ) in ("about:blank", ""):
            if time.monotonic() > deadline:
                raise BrowserError(f"{url} did not finish loading in {self.timeout} s.")
            time.sleep(0.05)
        return page


class Page:
    """One tab: evaluate JavaScript, click and hover with real mouse events."""

    def __init__(self, browser: Browser, session: str):
        self.browser = browser
        self.session = session

    def call(self, method: str, params: dict | None = None):
        return self.browser.call(method, params, self.session)

    @property
    def errors(self) -> list[str]:
        """Uncaught exceptions and console errors the page has raised so far."""
        out = []
        for e in self.browser.events:
            if e.get("sessionId") != self.session:
                continue
            if e["method"] == "Runtime.exceptionThrown":
                d = e["params"]["exceptionDetails"]
                out.append(d.get("exception", {}).get("description") or d.get("text", ""))
            elif e["method"] == "Runtime.consoleAPICalled" and e["params"]["type"] == "error":
                out.append(" ".join(str(a.get("value", "")) for a in e["params"]["args"]))
        return out

    def evaluate(self, expression: str):
        """The JSON value of a JavaScript expression (promises awaited); BrowserError if it throws."""
        result = self.call(
            "Runtime.evaluate",
            {"expression": expression, "returnByValue": True, "awaitPromise": True},
        )
        if "exceptionDetails" in result:
            d = result["exceptionDetails"]
            text = d.get("exception", {}).get("description") or d.get("text", "")
            raise BrowserError(f"{expression[:80]!r} threw: {text}")
        return result["result"].get("value")

    def _point(self, selector: str, dx: float | None, dy: float | None) -> tuple[float, float]:
        """Viewport coordinates of `selector` (scrolled into view), offset or its centre,
        checked to be the element the mouse would actually hit."""
        js = f"""(() => {{const e = document.querySelector({json.dumps(selector)});
          if (!e) return null; e.scrollIntoView({{block: "center", inline: "center"}});
          const r = e.getBoundingClientRect();
          const x = r.left + ({"r.width / 2" if dx is None else dx});
          const y = r.top + ({"r.height / 2" if dy is None else dy});
          const hit = document.elementFromPoint(x, y);
          return {{x, y, hit: !!hit && (hit === e || e.contains(hit))}};}})()"""
        p = self.evaluate(js)
        if p is None:
            raise BrowserError(f"No element matches {selector!r}.")
        if not p["hit"]:
            raise BrowserError(f"{selector!r} is covered at ({p['x']}, {p['y']}).")
        return p["x"], p["y"]

    def hover(self, selector: str, dx: float | None = None, dy: float | None = None) -> None:
        """Moves the mouse over `selector` (at offset dx, dy from its top left if given)."""
        x, y = self._point(selector, dx, dy)
        self.call("Input.dispatchMouseEvent", {"type": "mouseMoved", "x": x, "y": y})

    def click(self, selector: str, dx: float | None = None, dy: float | None = None) -> None:
        """A left click on `selector` as a person makes it: move, press, release."""
        x, y = self._point(selector, dx, dy)
        for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
            params = {"type": kind, "x": x, "y": y}
            if kind != "mouseMoved":
                params |= {"button": "left", "clickCount": 1}
            self.call("Input.dispatchMouseEvent", params)


def launch(root: str | Path, timeout: float = 30.0) -> Browser:
    """Starts the unpacked headless chromium (MissingBrowserError naming `make browser`)."""
    return Browser(root, timeout)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data_dir", default="", help="data root (default: .data in the repo)")
    args = parser.parse_args(argv)
    if not shutil.which("ldd"):
        raise SystemExit("ldd not found: install libc-bin (Debian) to check chromium's libraries.")
    root = sources.data_root(args.data_dir)
    binary = fetch_chromium(root)
    with launch(root) as browser:
        page = browser.open("data:text/html,<p id=p></p><script>p.textContent=6*7</script>")
        if page.evaluate("document.getElementById('p').textContent") != "42":
            raise SystemExit(f"{binary} started but did not run the test page's script.")
        version = browser.call("Browser.getVersion")["product"]
    print(f"{version}: {binary}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
