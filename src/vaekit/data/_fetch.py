"""Finding data files: ``$VAEKIT_DATA_DIR/<name>/``, the cache, else a verified download.

Downloads are done by `pooch <https://www.fatiando.org/pooch>`_: each file is streamed
to a temporary file in the cache folder, checked against its md5 (the hash registry),
and only then moved to its final name, so an interrupted or corrupted download never
leaves a file under that name; a failed download is retried once before the next mirror.
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path


def cache_dir() -> Path:
    """``$VAEKIT_CACHE_DIR`` or ``~/.cache/vaekit``."""
    d = os.environ.get("VAEKIT_CACHE_DIR")
    return Path(d) if d else Path.home() / ".cache" / "vaekit"


def md5sum(path: str | os.PathLike) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find(name: str, filename: str) -> Path | None:
    """The local copy of ``<name>/<filename>`` in the data folder or the cache, if any."""
    for root in (os.environ.get("VAEKIT_DATA_DIR"), cache_dir()):
        if root:
            p = Path(root) / name / filename
            if p.is_file():
                return p
    return None


def fetch(name: str, filename: str, urls: list[str], md5: str | None, *, download: bool = True) -> Path:
    """Path of ``<name>/<filename>``: found locally, or downloaded into the cache.

    :param urls: base URLs (ending in ``/``) tried in order; the file is ``<base><filename>``.
    :param md5: expected md5 of the file; a mismatch removes the download and raises.
    """
    found = find(name, filename)
    if found is not None:
        return found
    target = cache_dir() / name / filename
    if not download:
        raise FileNotFoundError(
            f"{name}: {filename} was not found in $VAEKIT_DATA_DIR/{name}/ or {target.parent}, "
            "and download=False. Put the file there or allow the download."
        )
    if not urls:
        raise FileNotFoundError(f"{name}: no download location for {filename}.")
    import pooch
    import requests

    pooch.get_logger().setLevel(logging.WARNING)  # no "Downloading ..." lines on stderr
    errors = []
    for base in urls:
        url = base + filename
        fetcher = pooch.create(
            path=target.parent,
            base_url=base,
            registry={filename: None if md5 is None else f"md5:{md5}"},
            retry_if_failed=1,
        )
        try:
            http = pooch.HTTPDownloader(progressbar=False, timeout=60)
            return Path(fetcher.fetch(filename, downloader=http))  # pyright: ignore[reportArgumentType]
        except ValueError as e:  # pooch's hash mismatch; the download is already removed
            if "hash" not in str(e):
                raise
            got = re.search(r"got (\w+)", str(e))
            raise ChecksumError(
                f"md5 mismatch for {url}: got {got.group(1) if got else 'another hash'}, expected {md5}. The "
                "corrupted download was removed; try again later or fetch the file by hand."
            ) from None
        except (requests.RequestException, OSError) as e:
            errors.append(f"{url}: {e}")
    raise FileNotFoundError(
        f"{name}: could not download {filename} ({'; '.join(errors)}). Download it by hand "
        f"into {target.parent} or set VAEKIT_DATA_DIR to a folder holding {name}/{filename}."
    )


class ChecksumError(ValueError):
    """A downloaded file does not have the expected md5 (the file is removed)."""


def base_urls(default: list[str], base_url: str | None, name: str) -> list[str]:
    """Mirrors: ``base_url`` or ``$VAEKIT_DATA_URL`` (``<base>/<name>/``) first, then ``default``."""
    base = base_url or os.environ.get("VAEKIT_DATA_URL")
    if base:
        return [f"{base.rstrip('/')}/{name}/"]
    return default
