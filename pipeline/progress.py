"""A progress bar on stderr for long command-line work (imports, loading batches), drawn by rich.

On a terminal the bar redraws in place. Anywhere else (a log file, a pipe, a service manager's journal) nothing is
drawn while the work runs and one line with the final state is written when it ends: no carriage returns or escape
codes flood the log.
"""

from __future__ import annotations

import sys
from typing import TextIO

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TransferSpeedColumn,
)


class ProgressBar:
    """``bar(done, total)`` after each step (the ``on_progress`` callbacks' shape), ``bar.close()`` at the end.

    ``unit``: None for bytes (shown as kB/MB/GB and a transfer rate), else the name of what is counted."""

    def __init__(self, label: str, unit: str | None = None, stream: TextIO | None = None) -> None:
        stream = stream if stream is not None else sys.stderr
        interactive = stream.isatty()
        amount: list[ProgressColumn] = (
            [DownloadColumn(), TransferSpeedColumn()] if unit is None else [MofNCompleteColumn(), TextColumn(unit)]
        )
        self._progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            TaskProgressColumn(),
            *amount,
            TimeElapsedColumn(),
            console=Console(file=stream, force_terminal=interactive, force_interactive=interactive),
            auto_refresh=interactive,  # off a terminal only the final state is written, at close()
            refresh_per_second=5,
            redirect_stdout=False,
            redirect_stderr=False,
        )
        self._task = self._progress.add_task(label, total=None)
        self._progress.start()
        self._closed = False

    def __call__(self, done: int, total: int) -> None:
        self._progress.update(self._task, completed=done, total=total)

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self._progress.stop()
