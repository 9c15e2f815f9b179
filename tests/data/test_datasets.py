"""Loaders: IDX parsing, verified downloads through a local HTTP server, files, folders."""

import functools
import gzip
import hashlib
import http.server
import shutil
import threading
import wave
from pathlib import Path

import numpy as np
import pytest

from vaekit.data import _fetch, datasets


@pytest.fixture
def cache(tmp_path, monkeypatch):
    c = tmp_path / "cache"
    monkeypatch.setenv("VAEKIT_CACHE_DIR", str(c))
    monkeypatch.delenv("VAEKIT_DATA_URL", raising=False)
    return c


@pytest.fixture
def serve():
    """Serve a folder on 127.0.0.1; yields ``start(folder) -> base URL``."""
    servers = []

    def start(folder):
        handler = functools.partial(_QuietHandler, directory=str(folder))
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return f"http://127.0.0.1:{srv.server_address[1]}"

    yield start
    for s in servers:
        s.shutdown()
        s.server_close()


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _write_idx(path, arr, compress=True):
    arr = np.asarray(arr)
    code = {np.dtype(np.uint8): 0x08}[arr.dtype]
    raw = bytes([0, 0, code, arr.ndim]) + np.array(arr.shape, ">u4").tobytes() + arr.tobytes()
    path.write_bytes(gzip.compress(raw) if compress else raw)


def test_idx_roundtrip_and_errors(tmp_path):
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (5, 3, 4), dtype=np.uint8)
    _write_idx(tmp_path / "a.gz", a)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "a.gz"), a)
    _write_idx(tmp_path / "b.idx", a, compress=False)
    np.testing.assert_array_equal(datasets.read_idx(tmp_path / "b.idx"), a)
    # truncated data: header says 60 bytes, fewer follow
    raw = gzip.decompress((tmp_path / "a.gz").read_bytes())
    (tmp_path / "t.gz").write_bytes(gzip.compress(raw[:-7]))
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.read_idx(tmp_path / "t.gz")
    # a gzip stream cut in the middle
    (tmp_path / "c.gz").write_bytes((tmp_path / "a.gz").read_bytes()[:20])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.read_idx(tmp_path / "c.gz")
    (tmp_path / "m.idx").write_bytes(b"\x01\x02\x03\x04rest")
    with pytest.raises(ValueError, match="magic"):
        datasets.read_idx(tmp_path / "m.idx")


def test_mnist_idx_against_shared_data(data_dir, cache, monkeypatch):
    if not data_dir or not (Path(data_dir) / "mnist").is_dir():
        pytest.skip("shared MNIST data not available (set VAEKIT_DATA_DIR)")
    monkeypatch.setenv("VAEKIT_DATA_DIR", data_dir)
    ds = datasets.load("mnist", split="test")
    assert ds.x.shape == (10000, 784) and ds.x.dtype == np.float32
    assert ds.meta["image_shape"] == (28, 28)
    assert 0.0 <= ds.x.min() and ds.x.max() <= 1.0
    # known facts about the MNIST test set: the first labels and the class counts
    assert ds.y[:5].tolist() == [7, 2, 1, 0, 4]
    assert np.bincount(ds.y).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert abs(ds.x.mean() - 0.1325) < 1e-3
    sub = datasets.load("mnist", split="test", limit=7)
    np.testing.assert_array_equal(sub.x, ds.x[:7])
    assert not cache.exists()  # found in the data folder, nothing downloaded


def test_binarized_mnist_splits(data_dir, monkeypatch):
    if not data_dir or not (Path(data_dir) / "binarized-mnist").is_dir():
        pytest.skip("shared binarized-mnist data not available")
    monkeypatch.setenv("VAEKIT_DATA_DIR", data_dir)
    v = datasets.load("binarized-mnist", split="valid")
    assert v.x.shape == (10000, 784) and set(np.unique(v.x)) == {0.0, 1.0}
    assert abs(v.x.mean() - 0.131127) < 1e-5  # the mean stated in the data's README
    with pytest.raises(ValueError, match="Valid splits: train, valid, test"):
        datasets.load("binarized-mnist", split="validation")


def test_fetch_md5_and_atomic(tmp_path, cache, serve):
    root = tmp_path / "srv"
    (root / "toy").mkdir(parents=True)
    payload = b"hello vaekit" * 100
    (root / "toy" / "good.bin").write_bytes(payload)
    (root / "toy" / "bad.bin").write_bytes(payload[:-1] + b"X")
    base = serve(root) + "/toy/"
    md5 = hashlib.md5(payload).hexdigest()
    p = _fetch.fetch("toy", "good.bin", [base], md5)
    assert p == cache / "toy" / "good.bin" and p.read_bytes() == payload
    # second call: served from the cache even with no mirror
    assert _fetch.fetch("toy", "good.bin", [], md5) == p
    with pytest.raises(datasets.ChecksumError, match="md5 mismatch"):
        _fetch.fetch("toy", "bad.bin", [base], md5)
    assert sorted(x.name for x in (cache / "toy").iterdir()) == ["good.bin"]  # bad download removed
    with pytest.raises(FileNotFoundError, match="could not download"):
        _fetch.fetch("toy", "missing.bin", [base], md5)


def test_fetch_retries_a_failed_download(tmp_path, cache):
    """A mirror that fails once (HTTP 503) is tried again before giving up (pooch's retry)."""
    payload = b"retry me" * 64
    hits = []

    class Flaky(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            hits.append(self.path)
            if len(hits) == 1:
                self.send_error(503)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Flaky)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        base = f"http://127.0.0.1:{srv.server_address[1]}/toy/"
        p = _fetch.fetch("toy", "r.bin", [base], hashlib.md5(payload).hexdigest())
    finally:
        srv.shutdown()
        srv.server_close()
    assert hits == ["/toy/r.bin", "/toy/r.bin"] and p.read_bytes() == payload
    assert sorted(x.name for x in (cache / "toy").iterdir()) == ["r.bin"]  # no temporary file left


def test_mnist_download_through_local_server(data_dir, tmp_path, cache, serve, monkeypatch):
    if not data_dir or not (Path(data_dir) / "mnist").is_dir():
        pytest.skip("shared MNIST data not available")
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    good, bad = tmp_path / "good" / "mnist", tmp_path / "bad" / "mnist"
    good.mkdir(parents=True)
    bad.mkdir(parents=True)
    for f in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copy(Path(data_dir) / "mnist" / f, good / f)
        b = bytearray((Path(data_dir) / "mnist" / f).read_bytes())
        b[len(b) // 2] ^= 0xFF
        (bad / f).write_bytes(bytes(b))
    bad_url = serve(tmp_path / "bad")
    with pytest.raises(ValueError, match="md5 mismatch"):
        datasets.load("mnist", split="test", base_url=bad_url)
    assert not any((cache / "mnist").iterdir())  # nothing corrupted stays in the cache
    monkeypatch.setenv("VAEKIT_DATA_URL", serve(tmp_path / "good"))
    ds = datasets.load("mnist", split="test")
    assert ds.y[:3].tolist() == [7, 2, 1]
    assert sorted(p.name for p in (cache / "mnist").iterdir()) == [
        "t10k-images-idx3-ubyte.gz",
        "t10k-labels-idx1-ubyte.gz",
    ]
    monkeypatch.delenv("VAEKIT_DATA_URL")
    assert datasets.load("mnist", split="test", download=False).x.shape == (10000, 784)  # from the cache


def test_embedded_sets_split_deterministically():
    tr, te, al = (datasets.load("digits", split=s) for s in ("train", "test", "all"))
    assert len(tr.x) + len(te.x) == len(al.x) == 1797
    assert len(te.x) == round(0.2 * 1797)
    assert tr.x.max() <= 1.0 and tr.meta["image_shape"] == (8, 8)
    np.testing.assert_array_equal(datasets.load("digits", split="test").x, te.x)
    rows = {r.tobytes() for r in al.x}
    assert {r.tobytes() for r in te.x} <= rows
    iris = datasets.load("iris", split="all")
    assert iris.x.shape == (150, 4) and iris.y.tolist().count(2) == 50


def test_unknown_name_and_missing_path():
    with pytest.raises(ValueError, match="Unknown dataset 'mnsit'. Known names: digits, iris, mnist"):
        datasets.load("mnsit")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        datasets.load("/no/such/file.csv")
    with pytest.raises(ValueError, match="no split 'valid'"):
        datasets.load("digits", split="valid")


def test_odds_npz_and_mat(data_dir, tmp_path):
    if not data_dir or not (Path(data_dir) / "odds").is_dir():
        pytest.skip("shared ODDS data not available")
    wbc = datasets.load(Path(data_dir) / "odds" / "wbc.mat", split="all")
    assert wbc.x.shape == (378, 30) and wbc.y.sum() == 21
    th = datasets.load(Path(data_dir) / "odds" / "38_thyroid.npz", split="all")
    assert th.x.shape == (3772, 6) and int(th.y.sum()) == 93
    # a truncated copy is reported as such
    raw = (Path(data_dir) / "odds" / "38_thyroid.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.load(tmp_path / "cut.npz")
    (tmp_path / "cut.mat").write_bytes((Path(data_dir) / "odds" / "wbc.mat").read_bytes()[:300])
    with pytest.raises(ValueError, match="truncated or corrupt"):
        datasets.load(tmp_path / "cut.mat")


def test_npz_without_pickles(tmp_path):
    np.savez(tmp_path / "ok.npz", X=np.arange(12.0).reshape(6, 2), y=np.array([0, 0, 1, 0, 1, 0]))
    ds = datasets.load(tmp_path / "ok.npz", split="all")
    np.testing.assert_array_equal(ds.x, np.arange(12.0, dtype=np.float32).reshape(6, 2))
    np.savez(tmp_path / "obj.npz", X=np.array([{"a": 1}] * 3, dtype=object))
    with pytest.raises(ValueError, match="without pickles"):
        datasets.load(tmp_path / "obj.npz")


def test_csv(tmp_path):
    (tmp_path / "d.csv").write_text("a,b,label\n1,2.5,x\n3,4,y\n5,6e-1,x\n")
    ds = datasets.load(tmp_path / "d.csv", split="all", label_column="label")
    np.testing.assert_allclose(ds.x, [[1, 2.5], [3, 4], [5, 0.6]])
    assert ds.y.tolist() == ["x", "y", "x"] and ds.meta["features"] == ["a", "b"]
    with pytest.raises(ValueError, match="column 'label' is not numeric: .*'x'.*--label-column label"):
        datasets.load(tmp_path / "d.csv")
    with pytest.raises(ValueError, match="label column 'lab' not found. Columns: a, b, label"):
        datasets.load(tmp_path / "d.csv", label_column="lab")
    (tmp_path / "t.csv").write_text("a,b\n1,2\n3")
    with pytest.raises(ValueError, match="line 3 has 1 fields .* truncated"):
        datasets.load(tmp_path / "t.csv")
    (tmp_path / "e.csv").write_text("a,b\n1,\n3,4\n")
    with pytest.raises(ValueError, match="column 'b'"):
        datasets.load(tmp_path / "e.csv")
    (tmp_path / "bin.csv").write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ValueError, match="not a UTF-8"):
        datasets.load(tmp_path / "bin.csv")


def test_parquet(tmp_path):
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"f1": [0.5, 1.5, 2.5], "f2": [1, 2, 3], "y": [0, 1, 0]}), tmp_path / "d.parquet")
    ds = datasets.load(tmp_path / "d.parquet", split="all", label_column="y")
    np.testing.assert_allclose(ds.x, [[0.5, 1], [1.5, 2], [2.5, 3]])
    assert ds.y.tolist() == [0, 1, 0]
    pq.write_table(pa.table({"f1": [0.5], "name": ["a"]}), tmp_path / "s.parquet")
    with pytest.raises(ValueError, match="column 'name' is not numeric"):
        datasets.load(tmp_path / "s.parquet", split="all")


def test_image_folder_streams(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(0)
    arrays = {}
    for cls in ("cat", "dog"):
        (tmp_path / "img" / cls).mkdir(parents=True)
        for i in range(3):
            a = rng.integers(0, 256, (6, 5), dtype=np.uint8)
            Image.fromarray(a).save(tmp_path / "img" / cls / f"{i}.png")
            arrays[(cls, i)] = a
    ds = datasets.load(tmp_path / "img", split="all")
    src = ds.x
    assert isinstance(src, datasets.ImageFolder) and len(src) == 6 and src.example_shape == (30,)
    assert ds.y.tolist() == [0, 0, 0, 1, 1, 1] and ds.meta["classes"] == ["cat", "dog"]
    got = src.read(np.array([4, 0]))
    np.testing.assert_allclose(got[0], arrays[("dog", 1)].reshape(-1) / 255.0, atol=1e-6)
    np.testing.assert_allclose(got[1], arrays[("cat", 0)].reshape(-1) / 255.0, atol=1e-6)
    small = datasets.load(tmp_path / "img", split="all", size=(3, 3), mode="RGB", flatten=False)
    assert small.x.read(np.array([0])).shape == (1, 3, 3, 3)
    tr = datasets.load(tmp_path / "img", split="train")
    assert len(tr.x) == 5 and tr.x.read(np.arange(5)).shape == (5, 30)
    (tmp_path / "img" / "cat" / "broken.png").write_bytes(b"not an image")
    broken = datasets.load(tmp_path / "img", split="all")
    with pytest.raises(ValueError, match="not a readable image"):
        broken.x.read(np.arange(len(broken.x)))


def test_audio_folder_frames(tmp_path):
    (tmp_path / "wav").mkdir()
    sig = (np.sin(np.arange(1000) / 10) * 20000).astype("<i2")
    with wave.open(str(tmp_path / "wav" / "a.wav"), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(8000)
        w.writeframes(sig.tobytes())
    ds = datasets.load(tmp_path / "wav", split="all", frame_length=256, hop=128)
    src = ds.x
    assert len(src) == 1 + (1000 - 256) // 128 and src.example_shape == (256,)
    np.testing.assert_allclose(src.read(np.array([2]))[0], sig[256:512] / 32768.0, atol=1e-6)


def test_binarized_mnist_from_original_amat(tmp_path, cache, serve, monkeypatch):
    """Users without the packed files: the .amat text is downloaded and packed once."""
    monkeypatch.delenv("VAEKIT_DATA_DIR", raising=False)
    rows = (np.random.default_rng(0).random((5, 784)) > 0.7).astype(int)
    (tmp_path / "srv" / "binarized-mnist").mkdir(parents=True)
    np.savetxt(tmp_path / "srv" / "binarized-mnist" / "binarized_mnist_test.amat", rows, fmt="%d")
    (tmp_path / "srv" / "binarized-mnist" / "binarized_mnist_valid.amat").write_text("0 1 2\n")
    base = serve(tmp_path / "srv")
    ds = datasets.load("binarized-mnist", split="test", base_url=base)
    np.testing.assert_array_equal(ds.x, rows.astype(np.float32))
    assert sorted(p.name for p in (cache / "binarized-mnist").iterdir()) == ["binarized_mnist_test.npz"]
    np.testing.assert_array_equal(datasets.load("binarized-mnist", split="test", download=False).x, ds.x)
    with pytest.raises(ValueError, match="expected \\[n, 784\\] of 0/1\\); it was removed"):
        datasets.load("binarized-mnist", split="valid", base_url=base)
    assert sorted(p.name for p in (cache / "binarized-mnist").iterdir()) == ["binarized_mnist_test.npz"]
