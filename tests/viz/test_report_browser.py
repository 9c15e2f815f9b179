"""The HTML report in a real headless Chromium at 1280 x 800: every image loads from the
file itself, the summary (headline numbers, the start of the key plots) is above the fold,
configuration and environment are collapsed at the end; screenshots are taken
(``VAEKIT_SCREENSHOT=path.png`` keeps the above-the-fold one)."""

import os
import shutil
from pathlib import Path

import pytest

from vaekit.cli import main

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]


def test_report_renders_in_chromium(tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian chromium is not installed (make test installs it)")
    run = tmp_path / "run"
    common = ["--data", "digits", "--limit", "200", "--hidden", "16", "--batch-size", "50", "--epochs", "2", "--quiet"]
    assert main(["train", *common, "--out", str(run)]) == 0
    assert main(["evaluate", str(run), "--iw-samples", "5", "--limit", "50", "--quiet"]) == 0
    assert main(["report", str(run)]) == 0
    shot = Path(os.environ.get("VAEKIT_SCREENSHOT", tmp_path / "report.png"))
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((run / "report.html").resolve().as_uri())
            page.wait_for_load_state("load")
            assert all(u.startswith(("file:", "data:")) for u in requests), requests  # self-contained
            page.screenshot(path=str(shot))  # what a reader sees first
            images = page.eval_on_selector_all(
                "img", "els => els.map(e => ({alt: e.alt, w: e.naturalWidth, h: e.naturalHeight, done: e.complete}))"
            )
            assert len(images) == 6  # loss, latent, samples, reconstructions, interpolation, lattice
            for im in images:
                assert im["done"] and im["w"] > 0 and im["h"] > 0, im
            assert page.locator("h1").inner_text().startswith("vaekit run")
            fold = 800
            head = page.locator("#headline").bounding_box()
            assert head is not None and head["y"] + head["height"] <= fold  # the headline numbers
            tiles = page.locator("#headline").inner_text()
            assert "test ELBO" in tiles and "log-likelihood" in tiles and "skipped steps" in tiles
            assert "training time" in tiles and "epochs" in tiles
            for alt in ("Loss curves", "Latent space"):
                box = page.locator(f'#key-plots img[alt^="{alt}"]').bounding_box()
                assert box is not None and box["y"] < fold - 200 and box["width"] >= 400  # starts well above the fold
            assert "Data" in page.locator("#summary").inner_text()
            # configuration and environment: collapsed, at the end, after every plot
            for d in ("config", "environment"):
                assert not page.locator(f"details#{d}").evaluate("e => e.open")
                assert page.locator(f"details#{d}").bounding_box()["y"] > page.locator("#plots").bounding_box()["y"]
            assert not page.locator("details#config table").is_visible()
            page.locator("details#config summary").click()
            assert "val_fraction" in page.locator("details#config table").inner_text()
            lattice = page.locator('img[alt^="Latent lattice"]').bounding_box()
            assert lattice is not None and lattice["width"] >= 800  # readable: >= 16 px per 8x8 digit
            grid = page.locator('img[alt^="Prior samples"]').bounding_box()
            assert grid is not None and grid["width"] > grid["height"]  # a wide labelled grid, not a tall strip
            page.screenshot(path=str(tmp_path / "full.png"), full_page=True)
        finally:
            browser.close()
    assert shot.stat().st_size > 10_000
