"""How long a session file of many steps takes to open in JupyterLab, and the extension's size.

Writes a session file of ``--steps`` steps (the demo model's three real steps from
labextension/test/fixtures, repeated with new step numbers: the size of a real file of that
length), starts JupyterLab on 127.0.0.1 with this checkout's extension, opens the file in
Debian's Chromium and prints, measured inside the page from the open command:
- the time until the first chart is painted, and until all seven are;
- the file size, and the extension's bundle (every static JS file, and the Vega chunk alone).

    python bench/session_viewer.py [--steps 5000] [--runs 3] [--screenshot docs/img/x.png]

``--screenshot`` also saves a picture of the demo fixture's session file opened (no kernel).
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "probekit" / "labextension" / "static"
FIXTURE = ROOT / "labextension" / "test" / "fixtures" / "demo.probekit.json"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--no-first-run"]
OPEN = """async (path) => {
    const app = window.jupyterapp;
    const t0 = performance.now();
    await app.commands.execute('docmanager:open', { path });
    const count = () => app.shell.currentWidget.node.querySelectorAll('.probekit-chart svg').length;
    const failed = () => app.shell.currentWidget.node.querySelector('.probekit-error');
    let first = null;
    while (true) {
        await new Promise((resolve) => requestAnimationFrame(resolve));
        if (failed()) { throw new Error(failed().textContent); }
        const n = count();
        if (n > 0 && first === null) { first = performance.now() - t0; }
        if (n === 7) { return [first, performance.now() - t0]; }
    }
}"""


def session_file(path: Path, steps: int) -> int:
    session = json.loads(FIXTURE.read_text(encoding="utf-8"))
    real = session["results"]
    session["results"] = [{**real[i % len(real)], "step": i} for i in range(steps)]
    text = json.dumps(session, allow_nan=False)
    path.write_text(text, encoding="utf-8")
    return len(text.encode())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--screenshot", type=Path, default=None)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    with tempfile.TemporaryDirectory() as tmp:
        base = Path(tmp)
        root, data = base / "root", base / "data" / "labextensions"
        root.mkdir()
        data.mkdir(parents=True)
        (data / "probekit").symlink_to(STATIC.parent)
        size = session_file(root / "long.probekit.json", args.steps)
        (root / "demo.probekit.json").write_bytes(FIXTURE.read_bytes())
        news = base / "settings" / "@jupyterlab" / "apputils-extension"
        news.mkdir(parents=True)  # no "Jupyter news?" toast over the screenshot
        (news / "notification.jupyterlab-settings").write_text('{"fetchNews": "false"}')
        port = free_port()
        env = {**os.environ, "JUPYTER_PATH": str(data.parent),
               "JUPYTER_CONFIG_DIR": str(base / "config"),
               "JUPYTERLAB_SETTINGS_DIR": str(base / "settings"),
               "JUPYTERLAB_WORKSPACES_DIR": str(base / "ws")}  # fmt: skip
        lab = subprocess.Popen(
            [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--allow-root",
             "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={port}",
             "--ServerApp.port_retries=0", "--IdentityProvider.token=",
             f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True"],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        url = f"http://127.0.0.1:{port}"
        try:
            for _ in range(300):
                try:
                    urllib.request.urlopen(f"{url}/api/status", timeout=2)
                    break
                except OSError:
                    time.sleep(0.3)
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path="/usr/bin/chromium", args=FLAGS)
                firsts, alls = [], []
                for _ in range(args.runs):
                    page = browser.new_page(viewport={"width": 1400, "height": 1000})
                    page.goto(f"{url}/lab?reset")
                    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
                    first, every = page.evaluate(OPEN, "long.probekit.json")
                    firsts.append(first / 1000)
                    alls.append(every / 1000)
                    page.close()
                if args.screenshot is not None:
                    page = browser.new_page(viewport={"width": 1500, "height": 1150})
                    page.goto(f"{url}/lab?reset")
                    page.wait_for_function("() => window.jupyterapp && window.jupyterapp.started")
                    page.evaluate(OPEN, "demo.probekit.json")
                    page.wait_for_timeout(500)
                    page.screenshot(path=str(args.screenshot))
                browser.close()
        finally:
            lab.terminate()
            lab.wait(timeout=20)
    js = {p.name: p.stat().st_size for p in STATIC.glob("*.js")}
    print(f"session file: {args.steps:,} steps, {size / 1e6:.1f} MB")
    print(f"open → first chart painted: median {statistics.median(firsts):.2f} s "
          f"(runs: {', '.join(f'{t:.2f}' for t in firsts)})")  # fmt: skip
    print(f"open → all 7 charts painted: median {statistics.median(alls):.2f} s")
    print(f"extension bundle: {sum(js.values()) / 1024:.0f} KiB of JS in {len(js)} files, "
          f"largest chunk {max(js.values()) / 1024:.0f} KiB (Vega, once per page)")  # fmt: skip


if __name__ == "__main__":
    main()
