"""The notebooks in a real JupyterLab, driven through its UI by a headless Chromium (`make browser-test`).

Each notebook is given the smoke profile's parameters (papermill, without executing), opened in
JupyterLab, run with "Run All Cells" as a person would, and checked: every code cell ran, no
cell shows an error, and the notebooks that draw figures show them. The first notebook's
screenshot goes to ``docs/_static/jupyterlab_01.png`` for the documentation's notebooks page.

Needs Chromium and its driver from Debian's packages (``apt-get install chromium
chromium-driver``) and selenium and jupyterlab from PyPI; skipped where they are missing.
"""

from __future__ import annotations

import json
import secrets
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and DRIVER), reason="needs chromium and chromium-driver (apt-get install)"),
]

#: Figures each notebook must show in the browser (the smoke profile draws all of them).
MIN_IMAGES = {"01": 2, "02": 3, "03": 2, "04": 1, "05": 2}

STATE = """
const nb = window.jupyterapp.shell.currentWidget;
if (!nb || !nb.content || !nb.sessionContext || !nb.sessionContext.session) return null;
const cells = nb.content.widgets.filter(c => c.model.type === 'code');
return JSON.stringify({
  path: nb.context.path,
  kernel: nb.sessionContext.session.kernel ? nb.sessionContext.session.kernel.status : 'none',
  counts: cells.map(c => c.model.executionCount),
  errors: cells.flatMap(c => c.model.outputs.toJSON().filter(o => o.output_type === 'error')
                                .map(o => o.ename + ': ' + o.evalue)),
  images: nb.content.node.querySelectorAll('.jp-OutputArea-output img').length,
});
"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _prepare(tmp: Path) -> list[Path]:
    """Copies of the notebooks with the smoke profile's parameters injected (nothing executed)."""
    papermill = pytest.importorskip("papermill")
    from dscd.paper.reproduce import _declared_parameters
    from dscd.profiles import get_profile

    out = []
    for path in sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")):
        number = path.name[:2]
        params = {"profile": "smoke", "figures_dir": "figures", "tables_dir": "tables", "runs_dir": "runs"}
        declared = _declared_parameters(path)
        params = {k: v for k, v in params.items() if k in declared or k == "profile"}
        params.update(get_profile("smoke").notebook_parameters(number))
        papermill.execute_notebook(str(path), str(tmp / path.name), parameters=params, prepare_only=True,
                                   kernel_name="python3", progress_bar=False)
        out.append(tmp / path.name)
    return out


def test_every_notebook_runs_in_jupyterlab_through_its_ui(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver")
    pytest.importorskip("jupyterlab")
    notebooks = _prepare(tmp_path)
    port, token = _free_port(), secrets.token_hex(16)
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", f"--port={port}", "--ip=127.0.0.1",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={tmp_path}",
         "--LabApp.expose_app_in_browser=True", "--ServerApp.disable_check_xsrf=True", "--allow-root"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=tmp_path)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    browser = None
    try:
        deadline = time.monotonic() + 60
        while True:  # the server answers
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status?token={token}", timeout=2)
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    pytest.fail("JupyterLab did not start within 60 s")
                time.sleep(0.5)
        from selenium.webdriver.chrome.service import Service

        browser = webdriver.Chrome(options=options, service=Service(DRIVER))
        for path in notebooks:
            # ?reset: a fresh workspace, so the notebook opened is the only one and the current one
            browser.get(f"http://127.0.0.1:{port}/lab/tree/{path.name}?reset&token={token}")
            state = _wait(browser, lambda s, n=path.name: s and s["path"] == n and s["kernel"] == "idle", 120,
                          f"{path.name}: never open with an idle kernel")
            browser.execute_script("window.jupyterapp.commands.execute('notebook:run-all-cells')")
            state = _wait(browser, lambda s: s["kernel"] == "idle" and all(c is not None for c in s["counts"]),
                          600, f"{path.name}: Run All Cells did not finish in 10 minutes")
            assert not state["errors"], f"{path.name}: {state['errors']}"
            assert state["images"] >= MIN_IMAGES[path.name[:2]], f"{path.name}: {state['images']} figures shown"
            if path.name.startswith("01"):
                browser.execute_script(
                    "document.querySelector('.jp-OutputArea-output img').scrollIntoView({block: 'center'})")
                time.sleep(1)
                browser.save_screenshot(str(tmp_path / "jupyterlab_01.png"))
                gallery = ROOT / "docs" / "_static"
                if gallery.is_dir():
                    shutil.copy(tmp_path / "jupyterlab_01.png", gallery / "jupyterlab_01.png")
            browser.execute_script("window.jupyterapp.commands.execute('docmanager:save')")
    finally:
        if browser is not None:
            browser.quit()
        server.terminate()
        server.wait(timeout=30)


def _wait(browser, done, seconds: float, message: str) -> dict:
    deadline = time.monotonic() + seconds
    state = None
    while time.monotonic() < deadline:
        raw = browser.execute_script(STATE)
        state = json.loads(raw) if raw else None
        if done(state):
            return state
        time.sleep(1)
    pytest.fail(f"{message} (last state: {state})")
