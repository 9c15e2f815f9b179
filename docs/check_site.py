"""Check the built site in headless Chromium (``make docs-check``, after ``make docs``).

Opens the home page, one API page and one tutorial from ``site/`` (file URLs, no server),
and checks that each renders (title, main content, no page error) and that every image on
it has loaded (``complete`` and a natural width > 0). The whole site's ``<img>`` sources are
also checked to point at files that exist. Screenshots go to ``site-check/`` (or
``$VAEKIT_DOCS_SCREENSHOTS``). Uses the Debian ``chromium`` through playwright, like
``tests/viz/test_report_browser.py``.

    python docs/check_site.py site
"""

from __future__ import annotations

import os
import re
import shutil
import sys
from pathlib import Path
from urllib.parse import unquote, urlparse

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
PAGES = {
    "home": ("index.html", "vaekit"),
    "api": ("api/core/index.html", "vaekit.core"),
    "tutorial": ("tutorials/t04_mnist/index.html", "Binarized MNIST"),
}


def missing_images(site: Path) -> list[str]:
    """``<img src>`` of every HTML page that points at a local file which does not exist."""
    bad = []
    for page in site.rglob("*.html"):
        for src in re.findall(r'<img[^>]*\ssrc="([^"]+)"', page.read_text(errors="replace")):
            if src.startswith(("data:", "http:", "https:")):
                continue
            target = (page.parent / unquote(urlparse(src).path)).resolve()
            if not target.is_file():
                bad.append(f"{page.relative_to(site)}: {src}")
    return bad


def main(argv: list[str]) -> int:
    site = Path(argv[1] if len(argv) > 1 else "site").resolve()
    if not (site / "index.html").is_file():
        print(f"no built site in {site}: run `make docs` first", file=sys.stderr)
        return 2
    from playwright.sync_api import sync_playwright

    shots = Path(os.environ.get("VAEKIT_DOCS_SCREENSHOTS", "site-check"))
    shots.mkdir(parents=True, exist_ok=True)
    failures = [f"missing image file: {m}" for m in missing_images(site)]
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS, headless=True)
        try:
            for name, (rel, heading) in PAGES.items():
                page = browser.new_page(viewport={"width": 1280, "height": 900})
                errors: list[str] = []
                page.on("pageerror", lambda e, errors=errors: errors.append(str(e)))
                # nothing outside the site is needed to render it
                page.route(re.compile(r"^https?://"), lambda route: route.abort())
                page.goto((site / rel).as_uri())
                page.wait_for_load_state("load")
                h1 = page.locator("article h1").first.inner_text()
                images = page.eval_on_selector_all(
                    "article img",
                    "els => els.map(e => ({src: e.currentSrc || e.src, w: e.naturalWidth, done: e.complete}))",
                )
                broken = [im["src"][:120] for im in images if not (im["done"] and im["w"] > 0)]
                text = page.locator("article").inner_text()
                page.screenshot(path=str(shots / f"{name}.png"), full_page=False)
                status = "ok"
                if heading not in h1:
                    failures.append(f"{name}: heading {h1!r} does not contain {heading!r}")
                    status = "FAIL"
                if len(text) < 500:
                    failures.append(f"{name}: only {len(text)} characters of content")
                    status = "FAIL"
                if broken:
                    failures.append(f"{name}: images not loaded: {broken}")
                    status = "FAIL"
                if errors:
                    failures.append(f"{name}: page errors: {errors}")
                    status = "FAIL"
                print(f"{status:>4}  {name:<9} {rel:<36} h1={h1!r}, {len(images)} images, {len(text)} characters")
                page.close()
        finally:
            browser.close()
    for f in failures:
        print("FAIL", f, file=sys.stderr)
    print(f"site check: {len(PAGES)} pages in Chromium, {'all ok' if not failures else f'{len(failures)} failure(s)'}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
