"""Chapter 3's live latent sliders in a real JupyterLab, driven by headless Chromium.

The test starts JupyterLab on a free local port with a temporary copy of ``chapters/`` as its
root (the repository is never written to), opens the chapter, runs all cells, drags the first
latent slider with the mouse and checks that

(a) the decoded image's pixels change,
(b) every displayed pixel equals ``decoder(z)`` for the slider values the page shows: the test
    asks the chapter's kernel for the exact slider values (they must round to the readouts on
    the page), decodes them with ``model.decoder`` itself and renders them with the drawing
    rule documented in :func:`aecore.explorer.to_pixels` (grey ``255 * (1 - v)``, 16x16 screen
    pixels per image pixel), then compares with the ``<img>`` the browser decoded;
(c) no "Error displaying widget" text and no browser console error or page error appears.

Every request that does not go to the local server is aborted. Screenshots go to
``artifacts/jupyterlab/``.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
JUPYTER = Path(sys.executable).with_name("jupyter")
ARTIFACTS = ROOT / "artifacts" / "jupyterlab"
CHAPTER = "03_latent_space.ipynb"
WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
TOKEN = "aecore-site-test"
# In 0..255 grey levels. The PNG is lossless and the browser draws an untagged PNG without colour
# conversion, so the only expected difference is rounding: the kernel renders from float32 via
# float64, the test from the float32 values printed as JSON; 1 level covers a value rounded on
# the other side of .5.
TOLERANCE = 1
RUN_ALL_TIMEOUT_MS = 150_000  # Chapter 3 runs in about 20 s on one idle core


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def jupyterlab(tmp_path_factory):
    """A JupyterLab server over a copy of chapters/; yields its base URL. Always shut down."""
    tmp = tmp_path_factory.mktemp("jupyterlab")
    root = tmp / "chapters"
    shutil.copytree(ROOT / "chapters", root, ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    for name in ("config", "runtime", "settings", "workspaces"):
        (tmp / name).mkdir()
    settings = {  # every cell in the page (no virtual scrolling), no news prompt over the cells
        "notebook-extension/tracker": {"windowingMode": "none"},
        "apputils-extension/notification": {"fetchNews": "false"},
    }
    for name, value in settings.items():
        package, plugin = name.split("/")
        folder = tmp / "settings" / "@jupyterlab" / package
        folder.mkdir(parents=True)
        (folder / f"{plugin}.jupyterlab-settings").write_text(json.dumps(value))
    port = _free_port()
    env = dict(os.environ, JUPYTER_CONFIG_DIR=str(tmp / "config"),
               JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), OMP_NUM_THREADS="1")
    env.pop("MPLBACKEND", None)
    cmd = [str(JUPYTER), "lab", "--no-browser", f"--ServerApp.port={port}",
           "--ServerApp.port_retries=0", "--ServerApp.ip=127.0.0.1",
           f"--ServerApp.root_dir={root}", f"--IdentityProvider.token={TOKEN}",
           "--LabApp.expose_app_in_browser=True",  # window.jupyterapp, to run commands
           "--LabApp.news_url=None",  # no news fetched from the internet
           "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
           "--LabApp.extension_manager=readonly",  # no PyPI queries for extensions
           f"--LabApp.user_settings_dir={tmp / 'settings'}",
           f"--LabApp.workspaces_dir={tmp / 'workspaces'}"]
    if os.geteuid() == 0:  # CI containers run as root; Jupyter refuses that without the flag
        cmd.append("--allow-root")
    log = open(tmp / "jupyterlab.log", "wb")
    server = subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=2):
                    break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    log.flush()
                    pytest.fail("JupyterLab did not start:\n"
                                + (tmp / "jupyterlab.log").read_text()[-3000:])
                time.sleep(0.3)
        yield base
    finally:
        server.send_signal(signal.SIGINT)  # a clean shutdown also stops the kernels
        try:
            server.wait(timeout=3)
            server.send_signal(signal.SIGINT)  # older servers ask to confirm
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            pass
        if server.poll() is None:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
        try:  # the kernels started by this server are in its process group
            os.killpg(server.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        log.close()


class LabPage:
    """A JupyterLab tab with every request outside the local server aborted and recorded."""

    def __init__(self, browser, base: str):
        self.base = base
        self.context = browser.new_context(viewport={"width": 1280, "height": 1000})
        self.blocked: list[str] = []
        self.errors: list[str] = []
        self.context.route("**/*", self._route)
        self.page = self.context.new_page()
        self.page.on("pageerror", lambda exc: self.errors.append(f"page error: {exc}"))
        self.page.on("console", self._console)

    def _route(self, route):
        url = route.request.url
        if url.startswith((self.base + "/", "data:", "blob:")):
            route.continue_()
        else:
            self.blocked.append(url)
            route.abort()

    def _console(self, msg):
        if msg.type == "error":
            where = msg.location.get("url", "") if msg.location else ""
            self.errors.append(f"console error: {msg.text} ({where})")

    def open_notebook(self, name: str) -> None:
        self.page.goto(f"{self.base}/lab/tree/{name}?token={TOKEN}", wait_until="load")
        self.page.wait_for_function(
            """name => { const app = window.jupyterapp; const w = app && app.shell.currentWidget;
                return !!(w && w.context && w.context.path === name && w.sessionContext
                          && w.sessionContext.session && w.sessionContext.session.kernel
                          && w.sessionContext.session.kernel.status === 'idle'); }""",
            arg=name, timeout=60_000)

    def run_all(self) -> dict:
        """Run every cell; wait until the kernel is idle and every code cell ran (or one failed)."""
        self.page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        self.page.wait_for_function(
            """() => { const w = window.jupyterapp.shell.currentWidget;
                const k = w.sessionContext.session.kernel;
                const cells = w.content.widgets.filter(c => c.model.type === 'code');
                const failed = cells.some(c => c.model.outputs.toJSON()
                                               .some(o => o.output_type === 'error'));
                return k.status === 'idle'
                       && (failed || cells.every(c => c.model.executionCount !== null)); }""",
            timeout=RUN_ALL_TIMEOUT_MS, polling=250)
        return self.page.evaluate(
            """mime => { const w = window.jupyterapp.shell.currentWidget;
                const cells = w.content.widgets.filter(c => c.model.type === 'code');
                const outs = cells.flatMap(c => c.model.outputs.toJSON());
                return {cells: cells.length,
                        unrun: cells.filter(c => c.model.executionCount === null).length,
                        errors: outs.filter(o => o.output_type === 'error')
                                    .map(o => o.ename + ': ' + o.evalue),
                        widgets: outs.filter(o => o.data && o.data[mime])
                                     .map(o => o.data[mime].model_id)}; }""", WIDGET_MIME)

    def kernel(self, code: str) -> str:
        """Execute ``code`` in the notebook's kernel (not in a cell); return its printed text."""
        return self.page.evaluate(
            """async code => { const w = window.jupyterapp.shell.currentWidget;
                const future = w.sessionContext.session.kernel.requestExecute(
                    {code, store_history: false});
                let out = '';
                future.onIOPub = msg => {
                    const t = msg.header.msg_type;
                    if (t === 'stream') out += msg.content.text;
                    if (t === 'error') out += 'KERNEL ERROR ' + msg.content.ename + ': '
                                              + msg.content.evalue;
                };
                await future.done;
                return out; }""", code)

    def screenshot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))

    def close(self) -> None:
        self.context.close()


# Runs in the chapter's kernel: finds the LatentSliders whose widget the page displays, reads the
# exact slider values and decodes them with the model's own decoder (not through the sliders).
PROBE = """
def _aecore_probe(ids):
    import json
    import numpy as np
    import torch
    from aecore.sliders import LatentSliders
    uis = list({id(v): v for v in list(globals().values())  # Out[...] holds it again
                if isinstance(v, LatentSliders) and v.widget.model_id in ids}.values())
    assert len(uis) == 1, f"{len(uis)} displayed LatentSliders"
    ui = uis[0]
    values = [s.value for s in ui.sliders]
    # with latent_dim <= max_sliders each slider is one coordinate of z
    assert np.array_equal(ui.axes.directions, np.eye(len(values))), ui.axes.directions
    np.testing.assert_allclose(ui.z, values, rtol=0, atol=1e-9)
    decoder = ui.model.decoder.eval()
    with torch.no_grad():
        x_hat = decoder(torch.tensor([values], dtype=torch.float32))[0]
    print(json.dumps({"values": values, "x_hat": x_hat.tolist(),
                      "image_shape": list(ui.image_shape), "scale": ui.scale,
                      "model_id": ui.widget.model_id}))
_aecore_probe(IDS)
del _aecore_probe
"""


def _displayed_pixels(sliders) -> np.ndarray:
    """The RGB pixels of the image widget as the browser decoded them, ``(H, W, 3)``."""
    img = sliders.locator(".widget-image").first
    data = img.evaluate(
        """img => { const c = document.createElement('canvas');
            c.width = img.naturalWidth; c.height = img.naturalHeight;
            const ctx = c.getContext('2d'); ctx.drawImage(img, 0, 0);
            return {w: c.width, h: c.height,
                    px: Array.from(ctx.getImageData(0, 0, c.width, c.height).data)}; }""")
    rgba = np.array(data["px"], dtype=np.int64).reshape(data["h"], data["w"], 4)
    assert (rgba[..., 3] == 255).all(), "the image has transparent pixels"
    return rgba[..., :3]


def _wait_until_settled(lab, sliders, quiet_ms: int = 600, timeout_s: float = 30) -> None:
    """Wait until the kernel is idle and the image has not changed for ``quiet_ms``."""
    deadline = time.monotonic() + timeout_s
    last, since = None, time.monotonic()
    while time.monotonic() < deadline:
        src = sliders.locator(".widget-image").first.get_attribute("src")
        idle = lab.page.evaluate(
            "window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.status")
        if src != last or idle != "idle":
            last, since = src, time.monotonic()
        elif time.monotonic() - since > quiet_ms / 1000:
            return
        time.sleep(0.1)
    raise AssertionError("the image kept changing or the kernel stayed busy after the drag")


def _expected_pixels(probe: dict) -> np.ndarray:
    """``decoder(z)`` drawn as the widget draws it: grey ``255 * (1 - v)``, nearest upscaling."""
    v = np.clip(np.array(probe["x_hat"], dtype=np.float64), 0, 1).reshape(probe["image_shape"])
    grey = np.round(255 * (1 - v)).astype(np.int64)
    grey = np.kron(grey, np.ones((probe["scale"], probe["scale"]), dtype=np.int64))
    return np.stack([grey] * 3, axis=-1)


def _readouts(sliders) -> list[str]:
    """The sliders' readouts as text (ipywidgets writes a Unicode minus sign)."""
    return [r.inner_text().strip().replace("\u2212", "-")
            for r in sliders.locator(".widget-readout").all()]


def test_chapter_3_sliders_redraw_decoder_output_in_jupyterlab(browser, jupyterlab):
    start = time.monotonic()
    lab = LabPage(browser, jupyterlab)
    try:
        lab.open_notebook(CHAPTER)
        ran = lab.run_all()
        run_s = time.monotonic() - start  # opening JupyterLab and running every cell
        assert not ran["errors"], f"cells raised: {ran['errors']}"
        assert ran["unrun"] == 0, f"{ran['unrun']} of {ran['cells']} code cells did not run"
        assert ran["widgets"], "no cell displayed a widget"

        sliders = lab.page.locator(".jupyter-widgets.widget-hbox").filter(
            has=lab.page.locator(".widget-image")).filter(
            has=lab.page.locator(".widget-hslider")).first
        sliders.scroll_into_view_if_needed()
        sliders.locator(".widget-hslider .noUi-handle").first.wait_for(timeout=20_000)
        # the widget ids of the cell that shows these sliders, to find them in the kernel
        ids = sliders.evaluate(
            """(el, mime) => { const node = el.closest('.jp-Cell');
                const w = window.jupyterapp.shell.currentWidget;
                const cell = w.content.widgets.find(c => c.node === node);
                return cell.model.outputs.toJSON().filter(o => o.data && o.data[mime])
                           .map(o => o.data[mime].model_id); }""", WIDGET_MIME)
        probe_code = PROBE.replace("IDS", repr(ids))
        _wait_until_settled(lab, sliders)
        before = json.loads(lab.kernel(probe_code))
        px_before = _displayed_pixels(sliders)
        lab.screenshot("03_sliders_before")

        handle = sliders.locator(".widget-hslider .noUi-handle").first
        track = sliders.locator(".widget-hslider .noUi-target").first
        handle.scroll_into_view_if_needed()
        lab.page.wait_for_timeout(300)
        hb, tb = handle.bounding_box(), track.bounding_box()
        y = hb["y"] + hb["height"] / 2
        target = 0.85 if hb["x"] < tb["x"] + 0.5 * tb["width"] else 0.15
        lab.page.mouse.move(hb["x"] + hb["width"] / 2, y)
        lab.page.mouse.down()
        lab.page.mouse.move(tb["x"] + target * tb["width"], y, steps=10)
        lab.page.mouse.up()
        _wait_until_settled(lab, sliders)

        out = lab.kernel(probe_code)
        assert "KERNEL ERROR" not in out, out
        after = json.loads(out)
        px_after = _displayed_pixels(sliders)
        lab.screenshot("03_sliders_after_drag")
        page_text = lab.page.inner_text("body")

        # the drag moved z1 only, and the page shows the kernel's values
        assert after["values"][0] != before["values"][0], "the drag did not move the slider"
        assert after["values"][1:] == before["values"][1:], "the drag moved another slider"
        shown = _readouts(sliders)
        assert shown == [f"{v:.2f}" for v in after["values"]], (shown, after["values"])

        # (a) the image changed; (b) it is decoder(z) for the slider values
        changed = int((px_after != px_before).any(axis=-1).sum())
        expected = _expected_pixels(after)
        assert px_after.shape == expected.shape, (px_after.shape, expected.shape)
        diff_before = int(np.abs(px_before - _expected_pixels(before)).max())
        diff_after = int(np.abs(px_after - expected).max())
        grey_levels = int((np.abs(_expected_pixels(after) - _expected_pixels(before)) > 0)
                          .any(axis=-1).sum()) // after["scale"] ** 2
        print(f"JupyterLab open + run all {run_s:.1f} s; z {before['values']} -> {after['values']}; "
              f"{changed} of {px_after.shape[0] * px_after.shape[1]} displayed pixels changed "
              f"({grey_levels} of {len(after['x_hat'])} image pixels); max |displayed - "
              f"decoder(z)| in 0..255: before {diff_before}, after {diff_after}")
        assert changed > 0, "the image did not change when the slider moved"
        assert diff_before <= TOLERANCE and diff_after <= TOLERANCE, (diff_before, diff_after)
        z_text = ", ".join(f"{v:.3f}" for v in after["values"])
        assert f"z = ({z_text})" in sliders.inner_text(), "the z readout below the image is stale"

        # (c) no widget failed to render, no JavaScript error, nothing fetched from outside
        assert "Error displaying widget" not in page_text
        assert not lab.errors, "browser errors:\n" + "\n".join(lab.errors)
        assert not lab.blocked, f"requests outside the local server: {lab.blocked}"
    finally:
        lab.close()
