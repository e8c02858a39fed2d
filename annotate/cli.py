"""What management commands print, in one place.

With `--json`, standard output carries exactly one JSON document (so `manage.py cmd --json | jq`
works) and everything meant for people (summaries, warnings, progress bars) goes to standard
error. Without it, summaries go to standard output as usual. Progress bars always go to
standard error, drawn by tqdm.

No app imports here: any app's commands can use it.
"""

from __future__ import annotations

import json
import sys
from typing import Any, TextIO

from django.core.management.base import BaseCommand
from django.core.serializers.json import DjangoJSONEncoder
from tqdm import tqdm

# Off a terminal (logs, CI) a redrawn bar is noise: one line every 10 s instead.
LOG_INTERVAL_S = 10.0


def raw_stream(wrapper: Any) -> TextIO:
    """The stream behind Django's OutputWrapper, which appends a newline to every write (tqdm
    redraws one line with carriage returns)."""
    return getattr(wrapper, "_out", wrapper)


def _is_tty(stream: TextIO) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


class ProgressBar:
    """A tqdm bar on `stream`, driven by the `progress(done, total)` callbacks the importers
    take. `total` 0 or None means unknown until a callback says it. Use as a context manager
    or call `close()`."""

    def __init__(
        self, label: str, total: int | None = None, *, stream: TextIO | None = None, unit="it"
    ) -> None:
        stream = stream or sys.stderr
        tty = _is_tty(stream)
        self.bar = tqdm(
            total=total or None,
            desc=label,
            unit=unit,
            file=stream,
            mininterval=0.1 if tty else LOG_INTERVAL_S,
            ascii=not tty,
            dynamic_ncols=tty,
        )

    def __call__(self, done: int, total: int | None = None) -> None:
        if total is not None and total != self.bar.total:
            self.bar.total = total
            self.bar.refresh()
        if done != self.bar.n:
            self.bar.update(done - self.bar.n)

    def status(self, text: str) -> None:
        """A short word after the counts (a run's status, say)."""
        self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        self.bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class CommandOutput:
    """`out = CommandOutput(self, as_json=options["json"])`, then `out.say(line)` for people,
    `out.result(data)` once for the JSON document and `out.progress(label, total)` for a bar."""

    def __init__(self, command: BaseCommand, *, as_json: bool) -> None:
        self.command = command
        self.as_json = as_json
        self._emitted = False

    def say(self, text: str = "") -> None:
        """A line for people: standard output, or standard error under `--json`."""
        (self.command.stderr if self.as_json else self.command.stdout).write(text)

    def warn(self, text: str) -> None:
        self.command.stderr.write(text)

    def result(self, data: Any, *, encoder: type[json.JSONEncoder] = DjangoJSONEncoder) -> None:
        """Under `--json`: `data` as the one JSON document on standard output. Otherwise
        nothing (the command has said what people need)."""
        if not self.as_json:
            return
        if self._emitted:
            raise RuntimeError("a command prints one JSON document")
        self._emitted = True
        self.command.stdout.write(json.dumps(data, cls=encoder))

    def progress(self, label: str, total: int | None = None, *, unit: str = "it") -> ProgressBar:
        return ProgressBar(label, total, stream=raw_stream(self.command.stderr), unit=unit)
