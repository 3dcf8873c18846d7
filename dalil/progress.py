"""Progress of long work on stderr: redrawn bars on a terminal, plain lines in a log.

tqdm redraws a bar with carriage returns and, for nested bars, cursor moves: right on a terminal,
garbage in a log file or a CI console (`reading: 12%|█▏ |\\r...\\x1b[A`). When stderr is not a
terminal, each bar instead writes one whole line at most every PLAIN_INTERVAL_S seconds, and a last
line when it ends. tqdm has no such mode of its own, hence the subclass.

This module imports nothing of dalil, so every layer (the store's word table included) may use it.
"""

from __future__ import annotations

import sys
from typing import IO

from tqdm import tqdm

PLAIN_INTERVAL_S = 5.0
PLAIN_FORMAT = "{desc}: {n_fmt}/{total_fmt} {unit} [{elapsed} elapsed, {remaining} left, {rate_fmt}]"


class PlainLines(tqdm):
    """A tqdm bar whose every refresh is one full line, never redrawn in place."""

    _closing = False

    def display(self, msg: str | None = None, pos: int | None = None) -> bool:
        line = self.__str__() if msg is None else msg
        if line.strip():  # tqdm's close() ends the last line itself
            self.fp.write(line.strip() + ("" if self._closing else "\n"))
            self.fp.flush()
        return True

    def close(self) -> None:
        self._closing = True
        super().close()

    def moveto(self, n: int) -> None:  # no cursor moves between nested bars
        pass

    def clear(self, nolock: bool = False) -> None:  # nothing drawn in place to wipe
        pass


def progress_bar(
    total: int | None, unit: str, desc: str, enabled: bool = True, position: int = 0, file: IO | None = None
) -> tqdm:
    """A bar on `file` (stderr): tqdm's when it is a terminal, `PlainLines` otherwise."""
    stream = file if file is not None else sys.stderr
    common = {"total": total, "unit": unit, "desc": desc, "disable": not enabled, "file": stream}
    if getattr(stream, "isatty", lambda: False)():
        return tqdm(dynamic_ncols=True, position=position, **common)
    return PlainLines(mininterval=PLAIN_INTERVAL_S, bar_format=PLAIN_FORMAT, **common)
