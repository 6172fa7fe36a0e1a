"""``rolefusion-extract ROOT``: frames and 16 kHz mono WAVs out of a data set's video clips.

Reads a clip layout (MELD's by default: ``train_splits/``, ``dev_splits_complete/``,
``output_repeated_splits_test/`` of ``dia{D}_utt{U}.mp4``) and writes, per clip, the middle frame
``frames/{split}/{name}.jpg``, with ``--frames N`` also N evenly spaced ones ``{name}_{k}.jpg``,
and ``audio/{split}/{name}.wav``: the layout the data presets read. Outputs that exist are kept,
so a second run resumes the first; clips are shared among worker processes. A clip that cannot
give an output is listed with its reason, on the terminal and in ``extract_errors.json``, and the
others are still extracted; the exit status is then 1. The work on one clip is in
:mod:`rolefusion.data.video_clips`.
"""

from __future__ import annotations

import argparse
import json
import os
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
)

from rolefusion.data.video_clips import (
    IMAGE_FORMATS,
    LAYOUTS,
    CannotExtract,
    ClipLayout,
    ClipResult,
    ClipSet,
    ClipTask,
    ExtractSettings,
    atomic_write,
    extract_clip,
    find_clips,
    plan,
    record_frame_count,
)

ERRORS_FILE = "extract_errors.json"


@dataclass(frozen=True)
class Summary:
    found: ClipSet
    complete: int
    """Clips skipped because every output already exists."""
    results: list[ClipResult]

    @property
    def errors(self) -> dict[str, str]:
        return {str(r.clip): r.error for r in sorted(self.results, key=lambda r: r.clip) if r.error}

    @property
    def written(self) -> int:
        return sum(len(result.written) for result in self.results)


def extract(
    root: Path,
    out: Path,
    layout: ClipLayout,
    settings: ExtractSettings,
    workers: int,
    console: Console,
) -> Summary:
    """Extract every clip of ``layout`` under ``root`` whose outputs under ``out`` are not all
    there yet, and write the error list to ``out/extract_errors.json`` (``{}`` when none, so a
    clean rerun leaves no stale list behind).

    Raises:
        CannotExtract: ``root`` holds none of the layout's clips, or ``out`` holds frames of
            another ``--frames`` count.
    """
    found = find_clips(root, layout)
    record_frame_count(out, settings.frames)
    planned = [plan(clip, out, settings).missing() for clip in found.clips]
    tasks = [task for task in planned if task is not None]
    results = []
    columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
               TimeRemainingColumn()]  # fmt: skip
    with Progress(*columns, console=console) as progress:
        bar = progress.add_task("extracting", total=len(tasks))
        for result in _run(tasks, workers):
            results.append(result)
            progress.advance(bar)
    summary = Summary(found, len(planned) - len(tasks), results)
    _write_errors(out / ERRORS_FILE, summary.errors)
    return summary


def _run(tasks: list[ClipTask], workers: int) -> Iterator[ClipResult]:
    """Each task's result as it finishes: in this process for one worker (nothing to start),
    else in a pool. A worker that dies (the out-of-memory killer) breaks the pool; the clips it
    leaves are reported as failed rather than lost in a traceback."""
    if min(workers, len(tasks)) <= 1:
        yield from map(extract_clip, tasks)
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)))
    try:
        futures = {pool.submit(extract_clip, task): task for task in tasks}
        for future in as_completed(futures):
            yield _result(future, futures[future])
    finally:
        pool.shutdown(cancel_futures=True)  # Ctrl-C: stop, do not finish the queue first


def _result(future: Future[ClipResult], task: ClipTask) -> ClipResult:
    try:
        return future.result()
    except BrokenProcessPool:
        return ClipResult(task.clip, error="its worker process died (out of memory?)")


def _write_errors(path: Path, errors: dict[str, str]) -> None:
    """Path -> reason; left untouched when it already says so, as a rerun that changes nothing
    should leave every file as it was."""
    content = (json.dumps(errors, indent=2) + "\n").encode()
    if not path.is_file() or path.read_bytes() != content:
        atomic_write(path, lambda file: file.write(content))


def report(summary: Summary, root: Path, out: Path, layout: ClipLayout, console: Console) -> None:
    """The summary, then every failed clip with its reason."""
    found, errors = summary.found, summary.errors
    for folder in summary.found.missing:
        console.print(f"[yellow]not found[/] {escape(str(folder))}: its split is left out")
    for folder, count in found.ignored.items():
        console.print(f"skipped {count} file{'s' * (count > 1)} in {escape(str(folder))} not "
                      f"named like {escape(layout.pattern)}")  # fmt: skip
    done = len(summary.results) - len(errors)
    console.print(
        f"{len(found.clips)} clips in {escape(str(root))}: {done} extracted, "
        f"{summary.complete} skipped (outputs already there), {len(errors)} failed; "
        f"{summary.written} files written under {escape(str(out))}"
    )
    for clip, reason in errors.items():
        console.print(f"[red]failed[/] {escape(clip)}: {escape(reason)}")
    if errors:
        console.print(f"error list: {escape(str(out / ERRORS_FILE))}")


# -- the command line -------------------------------------------------------------------------


def _split(text: str) -> tuple[str, str]:
    split, sep, folder = text.partition("=")
    if not sep or not split or not folder:
        raise argparse.ArgumentTypeError(f"expected SPLIT=FOLDER (train=clips/train), got {text!r}")
    return split, folder


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _quality(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError(f"must be between 1 and 100, got {value}")
    return value


def _pattern(text: str) -> str:
    try:
        re.compile(text)
    except re.error as error:
        raise argparse.ArgumentTypeError(f"not a regular expression: {error}") from None
    return text


def _cpu_count() -> int:
    """The cores this process may run on (a Slurm job's share, not the machine's)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def parser() -> argparse.ArgumentParser:
    described = argparse.ArgumentParser(
        prog="rolefusion-extract", description=__doc__.splitlines()[0]
    )
    described.add_argument("root", type=Path, help="the data set's folder (MELD: MELD.Raw)")
    described.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where frames/ and audio/ go (default: ROOT, beside the CSVs)",
    )
    described.add_argument(
        "--frames",
        type=_positive,
        default=1,
        metavar="N",
        help="also N evenly spaced frames per clip, NAME_0 to NAME_{N-1}",
    )
    described.add_argument("--no-audio", action="store_true", help="frames only")
    described.add_argument(
        "--workers",
        type=_positive,
        default=_cpu_count(),
        metavar="K",
        help="worker processes (default: the usable CPU cores)",
    )
    described.add_argument("--image-format", choices=list(IMAGE_FORMATS), default="jpg")
    described.add_argument(
        "--quality",
        type=_quality,
        default=ExtractSettings.quality,
        metavar="Q",
        help="JPEG quality, 1 to 100 (default: %(default)s)",
    )
    described.add_argument(
        "--layout",
        choices=list(LAYOUTS),
        default="meld",
        help="where the clips are (default: %(default)s)",
    )
    described.add_argument(
        "--split",
        type=_split,
        action="append",
        metavar="SPLIT=FOLDER",
        help="a split's clip folder under ROOT, repeatable; replaces the "
        "layout's folders (--split train=videos/train)",
    )
    described.add_argument(
        "--pattern",
        type=_pattern,
        default=None,
        help="regular expression a clip's file name matches in full (default: the layout's)",
    )
    return described


def main(argv: Sequence[str] | None = None) -> int:
    """Returns the exit status: 0, or 1 when a clip failed (2 from argparse on a usage error)."""
    command = parser()
    args = command.parse_args(argv)
    layout = LAYOUTS[args.layout]
    layout = ClipLayout(
        dict(args.split) if args.split else layout.folders, args.pattern or layout.pattern
    )
    settings = ExtractSettings(args.frames, not args.no_audio, args.image_format, args.quality)
    out = args.out or args.root
    console = Console(soft_wrap=True)  # paths stay whole: rich would fold them at the width
    try:
        summary = extract(args.root, out, layout, settings, args.workers, console)
    except CannotExtract as error:
        command.error(str(error))
    report(summary, args.root, out, layout, console)
    return 1 if summary.errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
