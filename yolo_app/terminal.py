"""Progress on the terminal for the CLI: a bar for the current file, and one for the whole job with
its ETA when there are several files. Shown only when stderr is a terminal (not in logs or pipes)."""

from __future__ import annotations

import sys

from yolo_app.annotate_job import JobProgress


class TerminalProgress:
    def __init__(self, files: int, enabled: bool | None = None) -> None:
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.files = files
        self._overall = None
        self._file = None
        self._name: str | None = None

    def __call__(self, p: JobProgress) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if self.files > 1 and self._overall is None:
            # Our own ETA: tqdm's would count files skipped or resumed as work done at this run's speed.
            self._overall = tqdm(total=p.total, unit="frame", desc="all files", dynamic_ncols=True, leave=False,
                                 file=sys.stderr, position=0,
                                 bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt}{postfix}")
        if p.name != self._name:
            self.close_file()
            self._name = p.name
            self._file = tqdm(total=p.file_total, unit="frame", desc=f"{p.file_number}/{p.files} {p.name[:30]}",
                              dynamic_ncols=True, leave=False, file=sys.stderr, position=1 if self.files > 1 else 0)
        self._file.n = p.file_done
        self._file.set_postfix({"fps": f"{p.fps:.1f}"}, refresh=False)
        self._file.refresh()
        if self._overall is not None:
            self._overall.n = p.done
            self._overall.set_postfix_str(f"{p.fps:.1f} FPS, ETA {format_duration(p.eta_s)}", refresh=False)
            self._overall.refresh()

    def write(self, line: str) -> None:
        """A line above the bars (a file's summary), without tearing them."""
        if self.enabled and (self._file is not None or self._overall is not None):
            from tqdm import tqdm

            tqdm.write(line, file=sys.stdout)
        else:
            print(line, flush=True)

    def close_file(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def close(self) -> None:
        self.close_file()
        if self._overall is not None:
            self._overall.close()
            self._overall = None


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    minutes, secs = divmod(int(seconds + 0.5), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
