"""The fault matrix of issue 11: each fault, reproduced through the ``vaekit`` command line
(signals, kill -9, lock contention, RLIMIT_FSIZE for a full disk, ``chattr +i`` for a
read-only folder, byte corruption, changed data), with its exit code, last stderr line
and whether the outcome is the wanted one. Not a test (slow; needs root for ``chattr``
and ``$VAEKIT_DATA_DIR/mnist`` for the long-epoch case).

    VAEKIT_DATA_DIR=/work/shared/data python bench/fault_matrix.py after.json
    PYTHONPATH=/tmp/main/src python bench/fault_matrix.py before.json   # another vaekit
    python bench/fault_matrix.py out.json item04,item10                   # some cases only
"""

import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PY = sys.executable
ENV = dict(os.environ, JAX_PLATFORMS="cpu", PYTHONWARNINGS="ignore")
TINY = ["--data", "digits", "--limit", "300", "--hidden", "16", "--batch-size", "50", "--quiet"]
ROOT = Path(tempfile.mkdtemp(prefix="faults-"))
results = []


def vk(*args, preexec=None, timeout=300, cwd=None):
    p = subprocess.run(
        [PY, "-m", "vaekit.cli", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        preexec_fn=preexec,
        timeout=timeout,
        cwd=cwd,
    )
    return p


def py(code, preexec=None):
    return subprocess.run([PY, "-c", code], capture_output=True, text=True, env=ENV, preexec_fn=preexec, timeout=300)


def summary(p):
    err = p.stderr.strip().splitlines()
    tb = "Traceback" in p.stderr
    last = err[-1] if err else ""
    return f"rc={p.returncode}{' TRACEBACK' if tb else ''} | {last[:220]}"


def record(item, case, outcome, ok=None):
    results.append({"item": item, "case": case, "outcome": outcome, "ok": ok})
    print(f"[{item}] {case}: {outcome}" + ("" if ok is None else f"  => {'OK' if ok else 'BAD'}"), flush=True)


def wait_for(pred, timeout=120):
    t0 = time.time()
    while time.time() - t0 < timeout:
        if pred():
            return True
        time.sleep(0.1)
    return False


def status(run):
    try:
        return json.loads((run / "vaekit.json").read_text()).get("status")
    except Exception as e:
        return f"unreadable ({e})"


def fsize(n):
    return lambda: resource.setrlimit(resource.RLIMIT_FSIZE, (n, n))


def immutable(path, on=True):
    subprocess.run(["chattr", "+i" if on else "-i", str(path)], check=True)


ONLY = sys.argv[2].split(",") if len(sys.argv) > 2 else None


def case(fn):
    if ONLY and fn.__name__ not in ONLY:
        return fn
    try:
        fn()
    except Exception as e:
        record(fn.__name__, "harness", f"harness error {type(e).__name__}: {e}")
    return fn


# a shared finished run
BASE = ROOT / "base"
p = vk("train", *TINY, "--epochs", "3", "--checkpoint-every", "1", "--out", BASE)
assert p.returncode == 0, p.stderr


@case
def item01():
    d = ROOT / "notes"
    d.mkdir()
    (d / "config.json").write_text("{}")
    (d / "thesis.tex").write_text("precious")
    p = vk("train", *TINY, "--epochs", "1", "--out", d, "--overwrite")
    kept = (d / "thesis.tex").exists()
    record(1, "--overwrite on a folder with config.json + thesis.tex", f"{summary(p)}; thesis.tex kept={kept}", kept)


@case
def item02():
    run = ROOT / "locked"
    a = subprocess.Popen(
        [PY, "-m", "vaekit.cli", "train", *TINY, "--limit", "1797", "--epochs", "20000", "--out", run],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 1)
    b = vk("train", *TINY, "--epochs", "1", "--out", run, "--overwrite")
    c = vk("train", "--resume", run, "--quiet", "--epochs", "30000")
    shutil.copy(BASE / "model.eqx", run / "model.eqx") if not (run / "model.eqx").exists() else None
    e = vk("evaluate", run, "--iw-samples", "8", "--limit", "20")
    a.kill()
    a.wait()
    try:
        cfg = json.loads((run / "config.json").read_text())
    except Exception as e:
        cfg = {"epochs": f"unreadable: {e}"}
    record(2, "second train --overwrite while training", summary(b), b.returncode != 0 and "in use" in b.stderr)
    record(2, "--resume while training", summary(c), c.returncode != 0 and "in use" in c.stderr)
    record(
        2, "evaluate while training (stale model.eqx present)", summary(e), e.returncode != 0 and "train" in e.stderr
    )
    record(2, "config after contention", f"epochs={cfg.get('epochs')} (original 20000)", cfg.get("epochs") == 20000)
    # after kill -9 the lock is released
    f = vk("train", "--resume", run, "--quiet", "--epochs", "1")
    record(2, "after kill -9 of the holder, the folder is usable", summary(f), "in use" not in f.stderr)


def _sig_case(item, sig, name):
    run = ROOT / f"sig-{name}"
    a = subprocess.Popen(
        [PY, "-m", "vaekit.cli", "train", *TINY, "--epochs", "400", "--checkpoint-every", "50", "--out", run],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    wait_for(lambda: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 3)
    a.send_signal(sig)
    out, err = a.communicate(timeout=60)
    ck = sorted(p.name for p in (run / "checkpoints").glob("*.ckpt"))
    last = err.strip().splitlines()[-1] if err.strip() else ""
    ok = a.returncode != 0 and status(run) == "interrupted" and bool(ck)
    record(
        item,
        f"{name} during training",
        f"rc={a.returncode} status={status(run)} checkpoints={ck[-1:] or 'none'} | {last[:160]}",
        ok,
    )


@case
def item03():
    _sig_case(3, signal.SIGTERM, "SIGTERM")
    _sig_case(3, signal.SIGHUP, "SIGHUP")


@case
def item04():
    run = ROOT / "long"
    a = subprocess.Popen(
        [
            PY,
            "-m",
            "vaekit.cli",
            "train",
            "--data",
            "mnist",
            "--hidden",
            "1500,1500",
            "--batch-size",
            "100",
            "--epochs",
            "2",
            "--out",
            run,
            "--quiet",
        ],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )  # a background shell ignores SIGINT
    wait_for(lambda: status(run) == "running", 300)
    time.sleep(20)  # well into the first (long) epoch, after compilation
    t0 = time.time()
    a.send_signal(signal.SIGINT)
    try:
        a.communicate(timeout=600)
    except subprocess.TimeoutExpired:
        a.kill()
    dt = time.time() - t0
    record(
        4,
        "Ctrl-C 20 s into a long MNIST epoch (hidden 1500,1500)",
        f"exited {dt:.1f} s after SIGINT, rc={a.returncode}, status={status(run)}",
        dt < 10,
    )


@case
def item05():
    run = ROOT / "diverge"
    p = vk("train", *TINY, "--epochs", "3", "--lr", "1e30", "--out", run)
    raw = (run / "vaekit.json").read_text()
    try:
        json.loads(raw, parse_constant=lambda c: (_ for _ in ()).throw(ValueError(c)))
        valid = True
    except ValueError:
        valid = False
    mraw = (run / "metrics.jsonl").read_text() if (run / "metrics.jsonl").exists() else ""
    record(
        5,
        "--lr 1e30",
        f"{summary(p)}; status={status(run)}; vaekit.json strict JSON={valid}; 'NaN' in metrics={'NaN' in mraw}",
        p.returncode != 0 and status(run) == "diverged" and valid,
    )


@case
def item06():
    code = """
import jax, numpy as np, vaekit as vk
from sklearn.datasets import load_digits
x = (load_digits().data[:300] / 16 > .5).astype('float32')
m = vk.presets.build('vae', 64, key=jax.random.key(0), latent_dim=2, hidden=[8])
states = []
vk.fit(m, x, key=jax.random.key(1), epochs=3, batch_size=50, x_val=x[:50], callback=states.append)
print([ (s.epoch, len(s.history['train_loss'])) for s in states])
"""
    p = py(code)
    out = p.stdout.strip()
    record(
        6, "TrainState.history of epochs 1..3 after fit returns", out or summary(p), out == "[(1, 1), (2, 2), (3, 3)]"
    )


def _corrupt(path, n=400):
    """Overwrite n bytes inside the data of the largest array (its .npy header intact)."""
    b = bytearray(path.read_bytes())
    starts = [i for i in range(len(b)) if b[i : i + 6] == b"\x93NUMPY"] + [len(b)]
    gaps = [(starts[k + 1] - starts[k], starts[k]) for k in range(len(starts) - 1)]
    size, at = max(gaps)
    i = at + size // 2 - n // 2
    import numpy as np

    b[i : i + n] = np.full(n // 4, 3.0e4, np.float32).tobytes()
    path.write_bytes(bytes(b))


@case
def item07():
    run = ROOT / "corrupt-model"
    shutil.copytree(BASE, run)
    _corrupt(run / "model.eqx")
    p = vk("evaluate", run, "--iw-samples", "8", "--limit", "20")
    record(
        7,
        "400 bytes overwritten in model.eqx, then evaluate",
        summary(p),
        p.returncode != 0 and "model.eqx" in p.stderr,
    )


@case
def item08():
    run = ROOT / "corrupt-ckpt"
    p = vk("train", *TINY, "--epochs", "4", "--checkpoint-every", "1", "--out", run)
    # pretend it was interrupted after epoch 3: drop epoch 4 and the model
    (run / "checkpoints" / "epoch-0004.ckpt").unlink()
    (run / "model.eqx").unlink()
    _corrupt(run / "checkpoints" / "epoch-0003.ckpt")
    p = vk("train", "--resume", run, "--quiet")
    err = p.stderr.strip().splitlines()
    record(
        8,
        "newest checkpoint corrupted, then --resume",
        f"{summary(p)}; said: {[l for l in err if 'epoch-0003' in l][:1]}",
        p.returncode == 0 and "epoch-0003" in p.stderr,
    )


@case
def item09():
    csv = ROOT / "d.csv"
    import numpy as np

    rng = np.random.default_rng(0)
    np.savetxt(csv, rng.normal(size=(200, 4)), delimiter=",", header="a,b,c,d", comments="")
    run = ROOT / "csvrun"
    vk(
        "train",
        "--data",
        csv,
        "--likelihood",
        "gaussian",
        "--hidden",
        "8",
        "--epochs",
        "2",
        "--checkpoint-every",
        "1",
        "--out",
        run,
        "--quiet",
    )
    (run / "model.eqx").unlink()
    np.savetxt(csv, rng.normal(size=(200, 4)) * 50, delimiter=",", header="a,b,c,d", comments="")
    p = vk("train", "--resume", run, "--quiet", "--epochs", "3")
    record(9, "CSV changed, then --resume", summary(p), p.returncode != 0 and "data-change" in p.stderr)


@case
def item10():
    # disk full while checkpointing (RLIMIT_FSIZE below the checkpoint size)
    run = ROOT / "full"
    p = vk("train", *TINY, "--epochs", "3", "--checkpoint-every", "1", "--out", run, preexec=fsize(20000))
    tmps = [str(q.relative_to(run)) for q in run.rglob("*") if q.name.endswith(".tmp")]
    record(
        10,
        "disk full (RLIMIT_FSIZE 20 kB) during checkpointing",
        f"{summary(p)}; tmp files left={tmps}",
        p.returncode != 0 and "Traceback" not in p.stderr and not tmps,
    )
    # read-only folder / permission denied on --out
    ro = ROOT / "ro"
    ro.mkdir()
    immutable(ro)
    p = vk("train", *TINY, "--epochs", "1", "--out", ro / "run")
    immutable(ro, False)
    record(
        10, "--out inside a read-only folder (chattr +i)", summary(p), p.returncode != 0 and "Traceback" not in p.stderr
    )
    # eval.json not writable
    run2 = ROOT / "evalro"
    shutil.copytree(BASE, run2)
    immutable(run2)
    p = vk("evaluate", run2, "--iw-samples", "8", "--limit", "20")
    immutable(run2, False)
    record(
        10,
        "evaluate with eval.json not writable (run folder chattr +i)",
        f"{summary(p)}; printed results={'log-likelihood' in p.stdout}",
        p.returncode != 0 and "Traceback" not in p.stderr and "log-likelihood" in p.stdout,
    )
    # detect --save on a full disk
    import numpy as np

    rng = np.random.default_rng(0)
    np.savetxt(ROOT / "normal.csv", rng.normal(size=(300, 5)), delimiter=",")
    out = ROOT / "flag.csv"
    np.savetxt(ROOT / "new.csv", rng.normal(size=(10, 5)), delimiter=",")
    p = vk(
        "detect",
        "--train",
        ROOT / "normal.csv",
        "--input",
        ROOT / "new.csv",
        "--output",
        out,
        "--save",
        ROOT / "det",
        preexec=fsize(5000),
    )
    left = sorted(q.name for q in ROOT.iterdir() if "det" in q.name)
    record(
        10,
        "detect --save with RLIMIT_FSIZE 5 kB",
        f"{summary(p)}; left behind={left}",
        p.returncode != 0 and "Traceback" not in p.stderr,
    )


@case
def item11():
    code = """
import numpy as np, vaekit as vk, json, os, shutil, sys
rng = np.random.default_rng(0)
det = vk.VAEDetector(n_models=1, max_steps=50, random_state=0).fit(rng.normal(size=(200, 4)))
det.save(sys.argv[1] + '/det')
"""
    d = ROOT / "dets"
    d.mkdir()
    p = subprocess.run([PY, "-c", code, str(d)], capture_output=True, text=True, env=ENV)
    base = d / "det"
    np_csv = ROOT / "four.csv"
    import numpy as np

    np.savetxt(np_csv, np.random.default_rng(1).normal(size=(10, 4)), delimiter=",")

    def variant(name, mutate):
        v = d / name
        shutil.copytree(base, v)
        mutate(v)
        q = vk("score", v, "--input", np_csv, "--output", d / f"{name}.csv")
        record(11, f"score with detector: {name}", summary(q), q.returncode != 0 and "Traceback" not in q.stderr)

    def meta_edit(fn):
        def m(v):
            meta = json.loads((v / "vaekit.json").read_text())
            fn(meta)
            (v / "vaekit.json").write_text(json.dumps(meta))

        return m

    variant("truncated-eqx", lambda v: (v / "model_0.eqx").write_bytes((v / "model_0.eqx").read_bytes()[:500]))
    variant("models-empty", meta_edit(lambda m: m.update(models=[])))
    variant("short-center", meta_edit(lambda m: m.update(center=m["center"][:2])))
    variant("n_features_1e12", meta_edit(lambda m: m.update(n_features_in=10**12)))
    # atomic save under a full disk
    code2 = code.replace("det.save(sys.argv[1] + '/det')", "det.save(sys.argv[1] + '/det2')")
    p = subprocess.run([PY, "-c", code2, str(d)], capture_output=True, text=True, env=ENV, preexec_fn=fsize(5000))
    left = [q.name for q in d.iterdir() if q.name.startswith("det2") or q.name.startswith(".det2")]
    inside = sorted(q.name for q in (d / "det2").iterdir()) if (d / "det2").exists() else None
    record(
        11,
        "VAEDetector.save on a full disk (RLIMIT 5 kB)",
        f"rc={p.returncode} left={left} contents={inside}",
        not left,
    )


@case
def item12():
    run = ROOT / "killed-start"
    a = subprocess.Popen(
        [PY, "-m", "vaekit.cli", "train", *TINY, "--epochs", "50", "--checkpoint-every", "100", "--out", run],
        env=ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    wait_for(lambda: (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 1)
    a.kill()
    a.wait()
    p = vk("train", *TINY, "--epochs", "2", "--out", run)
    q = vk("train", "--resume", run, "--quiet")
    record(12, "start killed before its first checkpoint; train --out again", summary(p))
    record(12, "... then the advised --resume", summary(q), q.returncode == 0)


@case
def item13():
    csv = ROOT / "one.csv"
    csv.write_text("a,b\n1,2\n")
    p = vk("train", "--data", csv, "--likelihood", "gaussian", "--out", ROOT / "one")
    record(13, "one-row CSV", summary(p), p.returncode != 0 and "Traceback" not in p.stderr)


@case
def item14():
    import numpy as np

    csv = ROOT / "big.csv"
    a = np.random.default_rng(0).normal(size=(100, 4))
    np.savetxt(csv, a, delimiter=",", header="a,b,c,d", comments="")
    t = csv.read_text().splitlines()
    t[5] = "1e300," + t[5].split(",", 1)[1]
    csv.write_text("\n".join(t) + "\n")
    p = vk("train", "--data", csv, "--likelihood", "gaussian", "--out", ROOT / "big", "--epochs", "1")
    record(14, "one cell of 1e300 in a CSV", summary(p), "float32" in p.stderr)
    q = py("""
import numpy as np, jax, vaekit as vk
x = np.zeros((10, 4)); x[3, 1] = 1e300
m = vk.presets.build('vae', 4, key=jax.random.key(0), hidden=[4])
vk.fit(m, x, key=jax.random.key(0), epochs=1, batch_size=5)
""")
    record(14, "vk.fit on float64 data overflowing float32 (Bernoulli)", summary(q), "float32" in q.stderr)
    run = ROOT / "torn"
    shutil.copytree(BASE, run)
    with open(run / "metrics.jsonl", "a") as f:
        f.write('{"epoch": 4, "train_lo')
    r = vk("report", run)
    record(14, "report with a torn last line in metrics.jsonl", summary(r), r.returncode == 0)
    b = ROOT / "bin.csv"
    b.write_bytes(os.urandom(2000))
    s = vk("score", BASE, "--input", b, "--output", ROOT / "s.csv")
    record(14, "score --input a binary file", summary(s), s.returncode != 0 and str(b) in s.stderr)
    e = py("""
import numpy as np, jax, vaekit as vk
m = vk.presets.build('vae', 4, key=jax.random.key(0), hidden=[4])
print(float(vk.elbo(m, np.full((2, 4), 0.5, np.float32), jax.random.key(0)).mean()))
""")
    record(
        14,
        "vk.elbo on 0.5 under a Bernoulli decoder",
        summary(e) + " stdout=" + e.stdout.strip(),
        e.returncode != 0 and "support" in e.stderr,
    )


@case
def item15():
    cfg = ROOT / "act.toml"
    cfg.write_text('data = "digits"\nlimit = 300\nhidden = [16]\nepochs = 1\n[model_options]\nactivation = "tanh"\n')
    p = vk("train", "--config", cfg, "--out", ROOT / "act", "--quiet")
    record(15, 'TOML [model_options] activation = "tanh"', summary(p), p.returncode == 0)


@case
def item16():
    run = ROOT / "perm"
    old = os.umask(0o022)
    try:
        vk("train", *TINY, "--epochs", "1", "--out", run)
        vk("report", run)
    finally:
        os.umask(old)
    modes = {}
    for q in sorted(run.rglob("*")):
        if q.is_file():
            modes.setdefault(oct(q.stat().st_mode & 0o777), []).append(str(q.relative_to(run)))
    record(
        16,
        "file modes of a run under umask 022",
        json.dumps({k: len(v) for k, v in modes.items()}) + f" 0600: {modes.get('0o600', [])[:4]}",
        set(modes) == {"0o644"},
    )


json.dump(results, open(sys.argv[1], "w"), indent=1)
shutil.rmtree(ROOT, ignore_errors=True)
