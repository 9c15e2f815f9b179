"""The HTML report in a real headless Chromium: every image loads; a screenshot is taken."""

import os
import shutil
from pathlib import Path

import pytest

from vaekit.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run"]


def test_report_renders_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make test installs it)")
    run = tmp_path / "run"
    common = ["--data", "digits", "--limit", "200", "--hidden", "16", "--batch-size", "50", "--epochs", "2", "--quiet"]
    assert main(["train", *common, "--out", str(run)]) == 0
    assert main(["report", str(run)]) == 0
    shot = Path(os.environ.get("VAEKIT_SCREENSHOT", tmp_path / "report.png"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto((run / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, w: e.naturalWidth, h: e.naturalHeight, done: e.complete}))"
            )
            assert len(images) == 6  # loss, latent, samples, reconstructions, interpolation, lattice
            for im in images:
                assert im["done"] and im["w"] > 0 and im["h"] > 0, im
            assert page.locator("h1").inner_text().startswith("vaekit run")
            assert "val_loss" in page.locator("body").inner_text()
            page.screenshot(path=str(shot), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
