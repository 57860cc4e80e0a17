"""Real-browser test fixtures: a JupyterLab server on 127.0.0.1 and a headless system Chromium.

- ``lab``: one JupyterLab for the test session (fixed free port, no token, temp root, config,
  settings and workspaces; the extension built in this checkout is put first on JUPYTER_PATH).
  ``lab.write_notebook(name, cells)`` writes a notebook into its root.
- ``notebook7``: the same for Jupyter Notebook 7 (``jupyter notebook``; skipped when the
  ``notebook`` package is not installed), and ``notebook7_page`` a page on it.
- ``lab_page``: a fresh browser page per test. Every request to a host other than 127.0.0.1 is
  aborted and recorded (``lab_page.blocked``); console errors and uncaught page errors are
  collected (``lab_page.console_errors``), and what was fetched (``lab_page.fetched``). Helpers
  open a notebook and run its cells.

Chromium is Debian's (/usr/bin/chromium, or $PROBEKIT_CHROMIUM): nothing downloads a browser.
Without it the tests skip, unless PROBEKIT_REQUIRE_BROWSER=1 (CI), where they fail.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = ROOT / "probekit" / "labextension"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
LOCAL_HOSTS = {"127.0.0.1"}


def _unavailable(reason: str) -> None:
    if os.environ.get("PROBEKIT_REQUIRE_BROWSER") == "1":
        pytest.fail(f"browser tests are required here (PROBEKIT_REQUIRE_BROWSER=1): {reason}")
    pytest.skip(reason)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def chromium_path() -> Path:
    path = Path(os.environ.get("PROBEKIT_CHROMIUM", "/usr/bin/chromium"))
    if not path.exists():
        _unavailable(
            f"no Chromium at {path}: install Debian's (`apt-get install -y chromium`, as root) "
            "to run the browser tests"
        )
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("Playwright for Python is missing: pip install 'probekit[test]'")
    return path


@dataclass
class Lab:
    """A running Jupyter server (JupyterLab, or Notebook 7): base URL, root directory, log."""

    url: str
    root: Path
    log: Path
    process: subprocess.Popen[bytes]
    app: str = "lab"

    def write_notebook(self, name: str, cells: list[str]) -> Path:
        """Writes a notebook of code cells (no outputs) into the server's root."""
        notebook = {
            "nbformat": 4,
            "nbformat_minor": 5,
            "metadata": {
                "kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}
            },
            "cells": [
                {
                    "cell_type": "code",
                    "id": f"cell-{i}",
                    "metadata": {},
                    "execution_count": None,
                    "outputs": [],
                    "source": source,
                }
                for i, source in enumerate(cells)
            ],
        }
        path = self.root / name
        path.write_text(json.dumps(notebook, indent=1))
        return path

    def log_tail(self, n: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-n:])


def _wait_until_up(lab: Lab, timeout: float = 90.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lab.process.poll() is not None:
            raise RuntimeError(f"JupyterLab exited ({lab.process.returncode}):\n{lab.log_tail()}")
        try:
            with urllib.request.urlopen(f"{lab.url}/api/status", timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"JupyterLab did not answer within {timeout:.0f} s:\n{lab.log_tail()}")


# Each app's own flags: expose the app object to the page, never look for news or updates.
APP_FLAGS = {
    "lab": [
        "--LabApp.expose_app_in_browser=True", "--LabApp.news_url=None",
        "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
    ],
    "notebook": ["--JupyterNotebookApp.expose_app_in_browser=True"],
}  # fmt: skip


def _serve(app: str, base: Path) -> Iterator[Lab]:
    """Runs ``jupyter <app>`` on 127.0.0.1 with this checkout's extension until closed."""
    if not (EXTENSION / "static" / "style.js").exists():
        pytest.fail(
            "the JupyterLab extension is not built: run `bash scripts/setup.sh` "
            "(or `cd labextension && jlpm install && jlpm build`)"
        )
    root, data = base / "root", base / "data" / "labextensions"
    root.mkdir()
    data.mkdir(parents=True)
    (data / "probekit").symlink_to(EXTENSION)  # this checkout's build, ahead of any installed one
    notifications = base / "settings" / "@jupyterlab" / "apputils-extension"
    notifications.mkdir(parents=True)  # no "official Jupyter news?" toast over the screenshots
    (notifications / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
        "JUPYTER_PATH": str(data.parent),
        "JUPYTER_CONFIG_DIR": str(base / "config"),
        "JUPYTER_RUNTIME_DIR": str(base / "runtime"),
        "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
        "JUPYTERLAB_WORKSPACES_DIR": str(base / "workspaces"),
        "OMP_NUM_THREADS": "1",
        "HF_HUB_OFFLINE": "1",
        "TRANSFORMERS_OFFLINE": "1",
    }
    port = _free_port()
    log = base / f"jupyter-{app}.log"
    command = [
        sys.executable, "-m", "jupyter", app, "--no-browser", "--allow-root",
        "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}", "--ServerApp.port_retries=0",
        "--IdentityProvider.token=", "--ServerApp.password=", f"--ServerApp.root_dir={root}",
        *APP_FLAGS[app],
    ]  # fmt: skip
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT)
    running = Lab(url=f"http://127.0.0.1:{port}", root=root, log=log, process=process, app=app)
    try:
        _wait_until_up(running)
        yield running
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        shutil.rmtree(base / "runtime", ignore_errors=True)


@pytest.fixture(scope="session")
def lab(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Lab]:
    yield from _serve("lab", tmp_path_factory.mktemp("jupyterlab"))


@pytest.fixture(scope="session")
def notebook7(tmp_path_factory: pytest.TempPathFactory, chromium_path: Path) -> Iterator[Lab]:
    try:
        import notebook
    except ImportError:
        _unavailable("Jupyter Notebook 7 is missing: pip install 'probekit[test]'")
    if int(notebook.__version__.split(".")[0]) < 7:
        _unavailable(f"Notebook {notebook.__version__} is installed; these tests need Notebook 7")
    yield from _serve("notebook", tmp_path_factory.mktemp("notebook7"))


@pytest.fixture(scope="session")
def browser(chromium_path: Path) -> Iterator[Any]:
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(
            executable_path=str(chromium_path), headless=True, args=CHROMIUM_FLAGS
        )
        yield chromium
        chromium.close()


@dataclass
class LabPage:
    """One browser page on the lab, with what it tried to fetch elsewhere and what it logged."""

    page: Any
    lab: Lab
    blocked: list[str] = field(default_factory=list)
    console_errors: list[str] = field(default_factory=list)
    fetched: list[tuple[str, int]] = field(default_factory=list)  # (url, response body bytes)

    def open_notebook(self, name: str, timeout_ms: int = 90_000) -> None:
        """Opens a notebook from the lab's root and waits for its kernel to be ready."""
        self.page.goto(f"{self.lab.url}/lab/tree/{name}")
        self.page.wait_for_function(
            """(name) => {
                const app = window.jupyterapp;
                const panel = app && app.shell.currentWidget;
                return !!(panel && panel.context && panel.context.path === name
                          && panel.sessionContext && panel.sessionContext.session
                          && panel.sessionContext.session.kernel
                          && panel.sessionContext.session.kernel.status === 'idle');
            }""",
            arg=name,
            timeout=timeout_ms,
        )

    def run_cells(self, *indices: int) -> None:
        """Runs cells of the open notebook in order, each to completion."""
        self.page.evaluate(
            """async (indices) => {
                const app = window.jupyterapp;
                const panel = app.shell.currentWidget;
                await panel.sessionContext.ready;
                for (const i of indices) {
                    panel.content.activeCellIndex = i;
                    const ok = await app.commands.execute('notebook:run-cell');
                    if (ok === false) { throw new Error(`cell ${i} failed`); }
                }
            }""",
            list(indices),
        )

    def cell_text(self, index: int) -> str:
        """The text (stream and text/plain) a cell of the open notebook printed."""
        return str(
            self.page.evaluate(
                """(i) => {
                    const panel = window.jupyterapp.shell.currentWidget;
                    const outputs = panel.content.widgets[i].model.outputs.toJSON();
                    return outputs.map((o) => [].concat(
                        o.text || (o.data && o.data['text/plain']) || o.evalue || ''
                    ).join('')).join('');
                }""",
                index,
            )
        )

    def assert_clean(self) -> None:
        """Nothing left 127.0.0.1 and the console has no errors."""
        assert self.blocked == [], f"requests to other hosts: {self.blocked}"
        assert self.console_errors == [], f"browser console errors: {self.console_errors}"


def _page(server: Lab, browser: Any) -> Iterator[LabPage]:
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    result = LabPage(page=page, lab=server)

    def route(route: Any) -> None:
        host = urlparse(route.request.url).hostname
        if host in LOCAL_HOSTS:
            route.continue_()
        else:
            result.blocked.append(route.request.url)
            route.abort("blockedbyclient")

    context.route("**/*", route)
    page.on(
        "console",
        lambda message: (
            result.console_errors.append(message.text) if message.type == "error" else None
        ),
    )
    page.on("pageerror", lambda error: result.console_errors.append(f"page error: {error}"))
    page.on(
        "requestfinished",
        lambda request: result.fetched.append((request.url, request.sizes()["responseBodySize"])),
    )
    page.set_default_timeout(60_000)
    try:
        yield result
    finally:
        context.close()


@pytest.fixture
def lab_page(lab: Lab, browser: Any) -> Iterator[LabPage]:
    yield from _page(lab, browser)


@pytest.fixture
def notebook7_page(notebook7: Lab, browser: Any) -> Iterator[LabPage]:
    yield from _page(notebook7, browser)
