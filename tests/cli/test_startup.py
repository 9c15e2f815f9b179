"""Start-up: ``import vaekit`` stays light, and the command line keeps compiled programs
in a persistent cache unless told not to."""

import os
import subprocess
import sys
from pathlib import Path

from vaekit.cli import build_parser, compile_cache_dir

SRC = str(Path(__file__).resolve().parents[2] / "src")
TINY = ["--data", "digits", "--limit", "120", "--hidden", "8", "--batch-size", "40", "--epochs", "1", "-q"]


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAEKIT_COMPILE_CACHE", "JAX_COMPILATION_CACHE"))}
    env["PYTHONPATH"] = SRC + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra)
    return env


def test_import_vaekit_does_not_import_plotting_sklearn_or_the_cli():
    code = (
        "import sys, vaekit\n"
        "heavy = [m for m in ('matplotlib', 'sklearn', 'vaekit.cli', 'vaekit.anomaly.detector') if m in sys.modules]\n"
        "print(','.join(heavy))\n"
    )
    r = subprocess.run([sys.executable, "-c", code], env=_env(), capture_output=True, text=True, check=True)
    assert r.stdout.strip() == "", f"import vaekit imported {r.stdout.strip()}"


def test_compile_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    for var in ("VAEKIT_COMPILE_CACHE_DIR", "VAEKIT_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert compile_cache_dir() == tmp_path / "home" / ".cache" / "vaekit" / "jax"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert compile_cache_dir() == tmp_path / "xdg" / "vaekit" / "jax"
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(tmp_path / "vk"))
    assert compile_cache_dir() == tmp_path / "vk" / "jax"
    monkeypatch.setenv("VAEKIT_COMPILE_CACHE_DIR", str(tmp_path / "c"))
    assert compile_cache_dir() == tmp_path / "c"


def test_no_compile_cache_flag_before_or_after_the_command():
    p = build_parser()
    assert p.parse_args(["--no-compile-cache", "train"]).no_compile_cache
    assert p.parse_args(["train", "--no-compile-cache"]).no_compile_cache
    assert not p.parse_args(["train"]).no_compile_cache


def _train(tmp_path: Path, name: str, before: tuple[str, ...] = (), **env: str) -> None:
    out = tmp_path / name
    subprocess.run(
        [sys.executable, "-m", "vaekit.cli", *before, "train", *TINY, "--out", str(out)],
        env=_env(**env),
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert (out / "metrics.jsonl").read_text().strip()


def test_train_fills_the_compile_cache_unless_turned_off(tmp_path):
    cache = tmp_path / "cache"
    _train(tmp_path, "on", VAEKIT_COMPILE_CACHE_DIR=str(cache))
    entries = [f for f in cache.iterdir() if f.name.startswith("jit_train_epoch")]
    assert entries, f"no compiled epoch in {sorted(f.name for f in cache.iterdir())}"
    off = tmp_path / "off"
    _train(tmp_path, "off1", ("--no-compile-cache",), VAEKIT_COMPILE_CACHE_DIR=str(off))
    _train(tmp_path, "off2", VAEKIT_COMPILE_CACHE_DIR=str(off), VAEKIT_COMPILE_CACHE="0")
    assert not off.exists() or not any(off.iterdir())
