"""``vk.fit(verbose=True)``: a tqdm progress bar over the epochs with the latest losses."""

from __future__ import annotations

import sys
from typing import Any, Self


class EpochBar:
    """A tqdm bar of ``epochs`` epochs (on stderr), created at the first finished epoch (so
    a resumed run starts where it stopped); the postfix shows the train/validation loss,
    the epoch's seconds and the steps skipped so far. Use as a context manager."""

    def __init__(self, epochs: int):
        self.epochs, self.bar, self.skipped = epochs, None, 0

    def epoch(self, history: dict[str, list], skipped: int) -> None:
        """Advance by the epoch that ``history``'s last entries describe."""
        if self.bar is None:
            from tqdm.auto import tqdm

            done = len(history["train_loss"]) - 1
            self.bar = tqdm(
                total=self.epochs,
                initial=done,
                desc="fit",
                unit="epoch",
                file=sys.stderr,
                dynamic_ncols=True,
            )
        self.skipped += skipped
        post: dict[str, Any] = {"train": f"{history['train_loss'][-1]:.3f}"}
        if history.get("val_loss"):
            post["val"] = f"{history['val_loss'][-1]:.3f}"
        post["epoch_s"] = f"{history['time'][-1]:.2f}"
        if self.skipped:
            post["skipped"] = self.skipped
        self.bar.set_postfix(post, refresh=False)
        self.bar.update(1)

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        if self.bar is not None:
            self.bar.close()
