"""A one-line progress bar on stderr for long command-line work (imports, generation)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


class ProgressBar:
    def __init__(
        self, label: str, stream: TextIO = sys.stderr, min_interval: float = 0.2, unit: str = "MB", scale: float = 1e6
    ) -> None:
        self.label = label
        self.unit = unit
        self.scale = scale
        self.stream = stream
        self.min_interval = min_interval
        self.started = time.perf_counter()
        self._last = 0.0

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if now - self._last < self.min_interval and done < total:
            return
        self._last = now
        fraction = done / total if total else 1.0
        width = 30
        filled = int(width * fraction)
        rate = done / max(now - self.started, 1e-9) / self.scale
        self.stream.write(
            f"\r{self.label} [{'#' * filled}{'.' * (width - filled)}] {fraction:6.1%} "
            f"{done / self.scale:,.1f}/{total / self.scale:,.1f} {self.unit} {rate:,.1f} {self.unit}/s"
        )
        self.stream.flush()

    def close(self) -> None:
        self.stream.write("\n")
        self.stream.flush()
