"""A one-line progress bar on stderr (files/s, audio hours/s, ETA), redrawn in place; silent
when disabled."""

from __future__ import annotations

import shutil
import sys
import time


class Progress:
    def __init__(self, total, enabled, stream=None):
        self.total, self.enabled = total, enabled
        self.stream = stream or sys.stderr
        self.start = time.perf_counter()
        self.done, self.seconds, self.label, self.drawn = 0, 0.0, '', 0.0

    def update(self, done, label='', seconds=0.0):
        """`done` files so far; `seconds` more of audio since the last call."""
        self.done, self.label = done, label
        self.seconds += seconds
        now = time.perf_counter()
        if self.enabled and (now - self.drawn > 0.1 or done == self.total):
            self.drawn = now
            self._draw()

    def _draw(self):
        width = shutil.get_terminal_size((80, 20)).columns
        elapsed = time.perf_counter() - self.start
        left = elapsed / self.done * (self.total - self.done) if self.done else 0.0
        filled = int(20 * self.done / self.total) if self.total else 20
        rate = self.done / elapsed if elapsed else 0.0
        hours = self.seconds / 3600 / elapsed if elapsed else 0.0
        text = (
            f'[{"#" * filled}{"." * (20 - filled)}] {self.done}/{self.total} files, '
            f'{rate:.1f} files/s, {hours:.3g} h audio/s, {elapsed:.0f} s, '
            f'{_duration(left)} left  {self.label}'
        )
        self.stream.write('\r' + text[: width - 1].ljust(width - 1))
        self.stream.flush()

    def note(self, text):
        """Prints a line above the bar."""
        if self.enabled:
            width = shutil.get_terminal_size((80, 20)).columns
            self.stream.write('\r' + ' ' * (width - 1) + '\r')
        print(text, file=self.stream, flush=True)
        if self.enabled:
            self._draw()

    def close(self):
        if self.enabled:
            self.stream.write('\n')
            self.stream.flush()


def _duration(seconds):
    if seconds < 120:
        return f'{seconds:.0f} s'
    if seconds < 7200:
        return f'{seconds / 60:.0f} min'
    return f'{seconds / 3600:.1f} h'
