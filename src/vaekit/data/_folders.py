"""Streamed datasets: image folders and audio folders as :class:`vaekit.Source`.

Files are listed once; examples are decoded from disk on each ``read(indices)``, so a
folder larger than memory can be trained on batch by batch.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np

from .._validate import positive_int
from ..training import ArrayLike

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


def _labelled_files(root: Path, suffixes: tuple[str, ...]) -> tuple[list[Path], np.ndarray | None, list[str]]:
    """Files under ``root``; labels from the first sub-folder level when there is one."""
    if not root.is_dir():
        raise FileNotFoundError(f"Data folder {root} does not exist. Check the path.")
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in suffixes and p.is_file())
    if not files:
        raise ValueError(f"{root} holds no {'/'.join(suffixes)} files.")
    classes = sorted({p.relative_to(root).parts[0] for p in files if len(p.relative_to(root).parts) > 1})
    if classes and all(len(p.relative_to(root).parts) > 1 for p in files):
        index = {c: i for i, c in enumerate(classes)}
        return files, np.array([index[p.relative_to(root).parts[0]] for p in files]), classes
    return files, None, []


class ImageFolder(ArrayLike):
    """PNG/JPEG images under a folder, resized to ``size`` and scaled to ``[0, 1]``.

    Sub-folders of ``root`` are classes (``labels``). Examples have shape ``[h * w * c]``
    when ``flatten`` (the default, for MLPs), else ``[h, w]`` or ``[h, w, 3]``.

    :param size: ``(height, width)``; default: the size of the first image.
    :param mode: ``"L"`` (grayscale) or ``"RGB"``.
    """

    def __init__(self, root, size: tuple[int, int] | None = None, mode: str = "L", flatten: bool = True):
        try:
            from PIL import Image
        except ImportError:
            raise ImportError("Image folders need Pillow: pip install pillow") from None
        if mode not in ("L", "RGB"):
            raise ValueError(f"Unknown image mode={mode!r}. Valid values: 'L' (grayscale), 'RGB'.")
        self._Image = Image
        self.root = Path(root)
        self.files, self.labels, self.classes = _labelled_files(self.root, IMAGE_SUFFIXES)
        self.mode = mode
        self.flatten = flatten
        if size is None:
            with Image.open(self.files[0]) as im:
                size = (im.height, im.width)
        self.size = (int(size[0]), int(size[1]))
        self.image_shape = self.size if mode == "L" else (*self.size, 3)

    @property
    def example_shape(self) -> tuple[int, ...]:
        return (int(np.prod(self.image_shape)),) if self.flatten else self.image_shape

    def __len__(self) -> int:
        return len(self.files)

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), *self.example_shape), np.float32)
        for j, i in enumerate(np.asarray(indices)):
            try:
                with self._Image.open(self.files[i]) as im:
                    im = im.convert(self.mode).resize(self.size[::-1], self._Image.Resampling.BILINEAR)
                    a = np.asarray(im, np.float32) / 255.0
            except (OSError, SyntaxError) as e:
                raise ValueError(f"{self.files[i]} is not a readable image ({e}).") from None
            out[j] = a.reshape(self.example_shape)
        return out


class AudioFolder(ArrayLike):
    """WAV files under a folder cut into frames of ``frame_length`` samples.

    Frames overlap by ``frame_length - hop``; samples are scaled to ``[-1, 1]`` and
    multi-channel files are averaged to mono. Sub-folders are classes.
    ``sample_rate`` is the files' rate (the most common one when they differ).
    """

    def __init__(self, root, frame_length: int = 1024, hop: int | None = None):
        frame_length = positive_int(frame_length, "frame_length")
        self.root = Path(root)
        self.frame_length = frame_length
        self.hop = int(hop or frame_length)
        files, labels, self.classes = _labelled_files(self.root, (".wav",))
        self.files, index, lab, self.sample_rates = [], [], [], []
        for fi, p in enumerate(files):
            n, rate = self._info(p)
            self.sample_rates.append(rate)
            count = 0 if n < frame_length else 1 + (n - frame_length) // self.hop
            index += [(len(self.files), s * self.hop) for s in range(count)]
            if labels is not None:
                lab += [labels[fi]] * count
            self.files.append(p)
        if not index:
            raise ValueError(f"{root}: no WAV file is at least frame_length={frame_length} samples long.")
        self.index = np.array(index, np.int64)
        self.labels = np.array(lab) if labels is not None else None
        rates, counts = np.unique(self.sample_rates, return_counts=True)
        self.sample_rate = int(rates[np.argmax(counts)])

    @staticmethod
    def _info(p: Path) -> tuple[int, int]:
        try:
            with wave.open(str(p), "rb") as w:
                return w.getnframes(), w.getframerate()
        except (wave.Error, EOFError) as e:
            raise ValueError(f"{p} is not a readable PCM WAV file ({e}).") from None

    @property
    def example_shape(self) -> tuple[int, ...]:
        return (self.frame_length,)

    def __len__(self) -> int:
        return len(self.index)

    def read(self, indices: np.ndarray) -> np.ndarray:
        out = np.empty((len(indices), self.frame_length), np.float32)
        for j, i in enumerate(np.asarray(indices)):
            fi, start = self.index[i]
            with wave.open(str(self.files[fi]), "rb") as w:
                w.setpos(int(start))
                raw = w.readframes(self.frame_length)
                width, ch = w.getsampwidth(), w.getnchannels()
            if width == 1:
                a = (np.frombuffer(raw, np.uint8).astype(np.float32) - 128) / 128
            elif width in (2, 4):
                dt = "<i2" if width == 2 else "<i4"
                a = np.frombuffer(raw, dt).astype(np.float32) / float(2 ** (8 * width - 1))
            else:
                raise ValueError(f"{self.files[fi]}: {8 * width}-bit WAV is not supported (use 8, 16 or 32-bit PCM).")
            a = a.reshape(-1, ch).mean(axis=1)
            if len(a) < self.frame_length:
                raise ValueError(f"{self.files[fi]} is truncated: fewer samples than its header states.")
            out[j] = a
        return out


def write_wav(path, frames, sample_rate: int, *, gap: float = 0.0) -> int:
    """Write frames ``[n, T]`` (or one ``[T]``) of samples in ``[-1, 1]`` one after another
    as a mono 16-bit PCM WAV file; ``gap`` seconds of silence between frames.

    The file is written next to its target and moved into place. Returns the number of
    samples that were outside ``[-1, 1]`` and clipped.
    """
    import os
    import tempfile

    a = np.asarray(frames, np.float64)
    a = a.reshape(1, -1) if a.ndim == 1 else a.reshape(a.shape[0], -1)
    sample_rate = positive_int(sample_rate, "sample_rate")
    if not np.isfinite(a).all():
        raise ValueError("The waveform has NaN/inf values; nothing was written.")
    clipped = int(np.sum(np.abs(a) > 1))
    silence = np.zeros((a.shape[0], int(round(gap * sample_rate))))
    pcm = np.round(np.clip(np.concatenate([a, silence], 1).reshape(-1), -1, 1) * 32767).astype("<i2")
    path = Path(path)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        with wave.open(tmp, "wb") as w:
            w.setnchannels(1)
            w.setsampwidth(2)
            w.setframerate(int(sample_rate))
            w.writeframes(pcm.tobytes())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)
    return clipped
