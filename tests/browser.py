"""Headless Chromium driven over the DevTools protocol on a pipe: load a page, check it, take a screenshot.

    >>> chromium() is None or Path(chromium()).name.startswith(("chromium", "chrome", "google-chrome"))
    True

`open_page(path, width)` loads a file in a window `width` CSS pixels wide
(a phone's 390 by default) and returns what the tests check: every image's
natural width (0 for one that did not decode), every video's error, whether
the page scrolls sideways, and the console's errors (a script's, a failed
load's).  Only the standard library: Chromium reads commands from file
descriptor 3 and answers on 4, each message JSON ended by a NUL byte
(`--remote-debugging-pipe`).
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

LOAD_SECONDS = 60  # a shared 2-core machine can be slow to start a browser
CHECK = """(async () => {
  const images = [...document.images];
  for (const image of images) image.loading = "eager";
  await Promise.all(images.map(image => image.decode().catch(() => null)));
  const videos = [...document.querySelectorAll("video")];
  await Promise.all(videos.map(video => video.readyState >= 1 || video.error ? null : new Promise(done => {
    video.addEventListener("loadedmetadata", done); video.addEventListener("error", done); setTimeout(done, 10000);
  })));
  const root = document.documentElement;
  return {
    images: images.map(image => [image.getAttribute("src"), image.naturalWidth]),
    videos: videos.map(video => [video.getAttribute("src"), video.error ? video.error.code : null, video.readyState]),
    scroll_width: root.scrollWidth, window_width: window.innerWidth, height: root.scrollHeight,
    text: document.body.innerText,
    scripts: document.querySelectorAll("script").length,
    // Number cells whose text takes more than one line (a number split across lines).
    wrapped_numbers: [...document.querySelectorAll("td.number")].filter(cell => {
      const range = document.createRange(); range.selectNodeContents(cell);
      return new Set([...range.getClientRects()].map(rect => Math.round(rect.top))).size > 1;
    }).map(cell => cell.textContent),
    number_cells: document.querySelectorAll("td.number").length,
  };
})()"""


def chromium() -> str | None:
    """The system's Chromium (Debian's `chromium`), or None."""
    for name in ("chromium", "chromium-browser", "google-chrome", "chrome"):
        if path := shutil.which(name):
            return path
    return None


@dataclass
class PageCheck:
    images: list  # [src, naturalWidth]
    videos: list  # [src, error code or None, readyState]
    scroll_width: int
    window_width: int
    height: int
    text: str
    scripts: int
    wrapped_numbers: list  # the text of every number cell that wraps onto a second line
    number_cells: int
    console_errors: list = field(default_factory=list)


def _above_four(descriptor: int) -> int:
    import fcntl

    moved = fcntl.fcntl(descriptor, fcntl.F_DUPFD, 10)
    os.close(descriptor)
    return moved


class Browser:
    """One headless Chromium process; `call` sends a DevTools command and waits for its answer."""

    def __init__(self, executable: str):
        self.profile = tempfile.mkdtemp(prefix="chromium-profile-")
        commands_read, self.commands = os.pipe()
        self.answers, answers_write = os.pipe()
        # Above 4, so that moving one onto 3 or 4 in the child cannot overwrite the other.
        commands_read, answers_write = (_above_four(commands_read), _above_four(answers_write))
        # The child sees the pipes as descriptors 3 and 4, as --remote-debugging-pipe expects.
        self.process = subprocess.Popen(
            [executable, "--headless", "--no-sandbox", "--disable-gpu", "--remote-debugging-pipe",
             "--no-first-run", "--no-default-browser-check", "--disable-extensions", "--mute-audio",
             "--allow-file-access-from-files", f"--user-data-dir={self.profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            pass_fds=(3, 4), preexec_fn=lambda: (os.dup2(commands_read, 3), os.dup2(answers_write, 4)))
        os.close(commands_read)
        os.close(answers_write)
        self.buffer, self.next_id, self.events = b"", 0, []

    def call(self, method: str, session: str | None = None, **params):
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params}
        if session:
            message["sessionId"] = session
        os.write(self.commands, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError(f"{method}: {answer['error']}")
                return answer["result"]
            self.events.append(answer)

    def wait_for(self, method: str, seconds: float = LOAD_SECONDS) -> dict:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for index, event in enumerate(self.events):
                if event.get("method") == method:
                    return self.events.pop(index)
            self.events.append(self._read(deadline))
        raise TimeoutError(f"no {method} within {seconds} s")

    def _read(self, deadline: float | None = None) -> dict:
        import select

        while b"\0" not in self.buffer:
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not select.select([self.answers], [], [], LOAD_SECONDS if timeout is None else timeout)[0]:
                raise TimeoutError("Chromium stopped answering")
            chunk = os.read(self.answers, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed its pipe")
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def close(self):
        try:
            self.call("Browser.close")
        except Exception:
            self.process.kill()
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        os.close(self.commands)
        os.close(self.answers)
        shutil.rmtree(self.profile, ignore_errors=True)


def open_page(path: Path, screenshot: Path | None = None, width: int = 390, height: int = 844,
              executable: str | None = None) -> PageCheck:
    """Load `path` at `width` x `height` CSS pixels, check it, and save a full-page screenshot if asked."""
    browser = Browser(executable or chromium())
    try:
        target = browser.call("Target.createTarget", url="about:blank")["targetId"]
        session = browser.call("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            browser.call(f"{domain}.enable", session)
        browser.call("Emulation.setDeviceMetricsOverride", session, width=width, height=height,
                     deviceScaleFactor=1, mobile=width < 600)
        browser.call("Page.navigate", session, url=Path(path).resolve().as_uri())
        browser.wait_for("Page.loadEventFired")
        found = browser.call("Runtime.evaluate", session, expression=CHECK, awaitPromise=True,
                             returnByValue=True)
        if "exceptionDetails" in found:
            raise RuntimeError(f"the check failed in the page: {found['exceptionDetails']}")
        check = PageCheck(**found["result"]["value"])
        if screenshot is not None:
            shot = browser.call("Page.captureScreenshot", session, format="png", captureBeyondViewport=True,
                                clip={"x": 0, "y": 0, "width": width, "height": check.height, "scale": 1})
            Path(screenshot).write_bytes(base64.b64decode(shot["data"]))
        check.console_errors = console_errors(browser.events)
        return check
    finally:
        browser.close()


def console_errors(events: list[dict]) -> list[str]:
    """Console errors, uncaught exceptions and failed loads among the events a page sent."""
    errors = []
    for event in events:
        method, params = event.get("method"), event.get("params", {})
        if method == "Runtime.consoleAPICalled" and params.get("type") in ("error", "assert"):
            errors.append(" ".join(str(arg.get("value", arg.get("description"))) for arg in params.get("args", [])))
        elif method == "Runtime.exceptionThrown":
            errors.append(params.get("exceptionDetails", {}).get("text", "exception"))
        elif method == "Log.entryAdded" and params.get("entry", {}).get("level") == "error":
            errors.append(params["entry"].get("text", "error") + " " + params["entry"].get("url", ""))
    return errors
