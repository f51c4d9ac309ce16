"""The command line's progress bar: redrawn in place on a terminal, one final line anywhere else."""

from __future__ import annotations

import io

from pipeline.progress import ProgressBar


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_off_a_terminal_the_bar_writes_one_final_line_without_carriage_returns() -> None:
    log = io.StringIO()
    bar = ProgressBar("importing export.zip", stream=log)
    for done in range(0, 12_000_001, 400_000):
        bar(done, 12_000_000)
    bar.close()
    bar.close()  # a second close writes nothing more

    written = log.getvalue()
    assert "\r" not in written and "\x1b" not in written
    assert written.count("\n") == 1 and written.endswith("\n")
    assert written.startswith("importing export.zip") and "100%" in written and "12.0/12.0 MB" in written


def test_counted_units_are_shown_as_done_of_total() -> None:
    log = io.StringIO()
    bar = ProgressBar("loading batches", unit="batches", stream=log)
    bar(3, 9)
    bar(9, 9)
    bar.close()

    assert "9/9 batches" in log.getvalue() and "\r" not in log.getvalue()


def test_on_a_terminal_the_bar_is_redrawn_in_place() -> None:
    terminal = Terminal()
    bar = ProgressBar("importing export.zip", stream=terminal)
    bar(1_000_000, 2_000_000)
    bar(2_000_000, 2_000_000)
    bar.close()

    assert "\r" in terminal.getvalue() and "importing export.zip" in terminal.getvalue()
