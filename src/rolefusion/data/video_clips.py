"""Frames and audio out of a data set's video clips, such as MELD's released utterances.

MELD ships each utterance as a clip (``train_splits/dia{D}_utt{U}.mp4``); the presets read images
and WAV files. This module finds the clips of a :class:`ClipLayout` and turns one clip into its
outputs with PyAV (FFmpeg's libraries, bundled in its wheels: no ffmpeg binary), one clip per call
so that a pool of processes can share the work (``rolefusion-extract``).

Frames are chosen by presentation time, read from the clip's packets rather than from its header:
the frame on screen at a given fraction of the clip, measured from its first frame's start to its
last frame's end. A header's duration may be missing or wrong, and MELD's clips do not all start
at time 0; the packets' timestamps are what a player shows.

Every output is written to a temporary name and renamed into place, so an interrupted run leaves
no half-written file that a resumed run would take for done.
"""

from __future__ import annotations

import json
import os
import re
import wave
from bisect import bisect_right
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from functools import partial
from itertools import pairwise
from pathlib import Path
from statistics import median
from typing import BinaryIO

try:
    import av
except ModuleNotFoundError as missing:  # the `video` extra
    raise ModuleNotFoundError(
        "extracting frames and audio from clips needs PyAV: pip install 'rolefusion[video]'"
    ) from missing
from PIL import Image

SAMPLE_RATE = 16_000
"""The WAVs' rate: what speech models expect, and what the audio encoder's presets read."""

IMAGE_FORMATS = {"jpg": "JPEG", "png": "PNG"}
"""File suffix -> Pillow format."""

FRAME_COUNT_FILE = Path("frames") / "extract.json"
"""Under the output root: how many evenly spaced frames per clip ``frames/`` holds."""


@dataclass(frozen=True)
class ClipLayout:
    """Where a data set keeps its clips: one folder per rolefusion split (``train``, ``val``,
    ``test``), relative to the data set's root, and the regular expression that a clip's file name
    matches in full. Other files are skipped and counted: MELD's test folder holds copies under
    other names in some releases, and archives made on macOS add ``._`` files."""

    folders: Mapping[str, str]
    pattern: str = r"dia\d+_utt\d+\.mp4"


LAYOUTS: dict[str, ClipLayout] = {
    "meld": ClipLayout(
        {
            "train": "train_splits",
            "val": "dev_splits_complete",
            "test": "output_repeated_splits_test",
        }
    ),
}


@dataclass(frozen=True)
class Clip:
    split: str
    path: Path


@dataclass(frozen=True)
class ClipSet:
    """What :func:`find_clips` found under a root."""

    clips: list[Clip]
    ignored: dict[Path, int]
    """Folder -> how many files in it do not match the layout's pattern."""
    missing: list[Path]
    """The layout's folders that are not there (a data set may be extracted in part)."""


class CannotExtract(Exception):
    """Nothing can be done: the root, or every folder of the layout, is missing, no file matches
    the pattern, or the output holds frames of another count."""


def find_clips(root: Path, layout: ClipLayout) -> ClipSet:
    """The clips under ``root`` in ``layout``, sorted by split order and file name.

    Raises:
        CannotExtract: naming what was looked for, when there is nothing to extract.
    """
    if not root.is_dir():
        raise CannotExtract(f"{root}: no such directory")
    folders = {split: root / folder for split, folder in layout.folders.items()}
    missing = [folder for folder in folders.values() if not folder.is_dir()]
    if len(missing) == len(folders):
        looked_for = ", ".join(f"{folder}/" for folder in layout.folders.values())
        raise CannotExtract(f"{root}: none of the clip folders is there (looked for {looked_for})")
    pattern = re.compile(layout.pattern)
    clips, ignored = [], {}
    for split, folder in folders.items():
        if folder in missing:
            continue
        files = sorted(entry for entry in folder.iterdir() if entry.is_file())
        matching = [path for path in files if pattern.fullmatch(path.name)]
        clips += [Clip(split, path) for path in matching]
        if len(files) > len(matching):
            ignored[folder] = len(files) - len(matching)
    if not clips:
        searched = ", ".join(str(folder) for folder in folders.values() if folder not in missing)
        raise CannotExtract(f"no file named like {layout.pattern} in {searched}")
    return ClipSet(clips, ignored, missing)


# -- what to make of a clip ------------------------------------------------------------------


@dataclass(frozen=True)
class ExtractSettings:
    frames: int = 1
    """1: the middle frame only; N > 1: also N evenly spaced frames, ``_0`` to ``_{N-1}``."""
    audio: bool = True
    image_format: str = "jpg"
    quality: int = 90
    """JPEG quality (Pillow's scale, 1 to 95 useful); PNG is lossless and ignores it."""


@dataclass(frozen=True)
class ClipTask:
    """One clip's outputs: images at positions in the clip (0 its start, 1 its end) and the WAV.
    Small and plain, so that it travels to a worker process."""

    clip: Path
    frames: tuple[tuple[Path, float], ...] = ()
    audio: Path | None = None
    quality: int = 90

    def missing(self) -> ClipTask | None:
        """This task cut down to the outputs not on disk yet, ``None`` when all are.

        Outputs are renamed into place only once written whole, so one that exists is done;
        a clip with some of its outputs (a run stopped between them, a frame deleted by hand,
        ``--no-audio`` dropped) gets only the others made.
        """
        frames = tuple((path, at) for path, at in self.frames if not path.exists())
        audio = self.audio if self.audio and not self.audio.exists() else None
        return replace(self, frames=frames, audio=audio) if frames or audio else None


def frame_positions(count: int) -> list[float]:
    """The middle (0.5), then for ``count`` > 1 the centres of ``count`` equal parts of the clip:
    spread evenly and away from its cut-in and cut-out (with an odd count, the middle one is the
    middle frame)."""
    middle = [0.5]
    return middle if count == 1 else middle + [(k + 0.5) / count for k in range(count)]


def plan(clip: Clip, out: Path, settings: ExtractSettings) -> ClipTask:
    """Every output of ``clip`` under ``out``, in the layout the data presets read:
    ``frames/{split}/{name}.jpg`` (and ``{name}_{k}.jpg``), ``audio/{split}/{name}.wav``."""
    stem, suffix = clip.path.stem, settings.image_format
    folder = out / "frames" / clip.split
    names = [f"{stem}.{suffix}"]
    if settings.frames > 1:
        names += [f"{stem}_{k}.{suffix}" for k in range(settings.frames)]
    positions = frame_positions(settings.frames)
    frames = tuple((folder / name, at) for name, at in zip(names, positions, strict=True))
    audio = out / "audio" / clip.split / f"{stem}.wav" if settings.audio else None
    return ClipTask(clip.path, frames, audio, settings.quality)


def record_frame_count(out: Path, count: int) -> None:
    """Remember how many evenly spaced frames ``frames/`` holds, and refuse another count.

    The ``_k`` names do not say ``N``: frames of a 3-frame run resumed with ``--frames 5`` would
    be taken for done while standing at other positions. The middle frame does not depend on
    ``N``, so a count of 1 is always allowed.
    """
    if count == 1:
        return
    path = out / FRAME_COUNT_FILE
    if path.is_file():
        recorded = json.loads(path.read_text())["frames"]
        if recorded != count:
            raise CannotExtract(
                f"{out / 'frames'} holds {recorded} evenly spaced frames per clip ({path}); "
                f"--frames {count} would mix their positions. Pass --frames {recorded}, another "
                f"--out, or delete the *_k frames and {path}"
            )
        return
    atomic_write(path, lambda file: file.write(json.dumps({"frames": count}).encode()))


# -- one clip ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClipResult:
    clip: Path
    written: tuple[Path, ...] = ()
    error: str | None = None


class ClipError(Exception):
    """A clip that cannot give an output; the message is what the error list shows."""


def extract_clip(task: ClipTask) -> ClipResult:
    """Write ``task``'s outputs. A bad clip never raises: its result carries the error, and
    whatever could be made is still written (the frames of a clip without an audio track)."""
    written: list[Path] = []
    errors = []
    for stage in (_write_frames, _write_audio):
        try:
            stage(task, written)
        except ClipError as error:
            errors.append(str(error))
        except OSError as error:
            errors.append(f"cannot write {error.filename or task.clip.name}: {error.strerror}")
        except Exception as error:  # a clip nobody foresaw must not stop the others
            errors.append(f"cannot extract {task.clip.name}: {type(error).__name__}: {error}")
    # An unreadable file fails both stages alike: say it once.
    return ClipResult(task.clip, tuple(written), "; ".join(dict.fromkeys(errors)) or None)


def _write_frames(task: ClipTask, written: list[Path]) -> None:
    if not task.frames:
        return
    images = read_frames(task.clip, [at for _, at in task.frames])
    for (path, _), image in zip(task.frames, images, strict=True):
        atomic_write(path, partial(_save_image, image, path.suffix, task.quality))
        written.append(path)


def _write_audio(task: ClipTask, written: list[Path]) -> None:
    if task.audio is None:
        return
    pcm = read_audio(task.clip)
    atomic_write(task.audio, lambda file: _save_wav(pcm, file))
    written.append(task.audio)


@contextmanager
def _decoding(path: Path) -> Iterator[None]:
    """FFmpeg's errors (an unreadable header, a corrupt packet) as the clip's error."""
    try:
        yield
    except av.FFmpegError as error:
        raise ClipError(f"cannot decode {path.name}: {error.strerror or error}") from None


def _check_complete(stream: av.stream.Stream, packets: int, path: Path) -> None:
    """The file's index (an MP4's sample table) counts the stream's packets: fewer read means
    the file was cut short. FFmpeg stops at the cut without an error, and the frames chosen
    from what is left would stand at the wrong places."""
    if stream.frames and packets < stream.frames:
        raise ClipError(
            f"cannot decode {path.name}: truncated, {packets} of the {stream.frames} "
            f"{stream.type} packets its index lists are in the file"
        )


def frames_at(timestamps: Sequence[int], end: int, positions: Sequence[float]) -> list[int]:
    """The timestamp of the frame on screen at each position of the clip.

    Args:
        timestamps: every frame's presentation timestamp, in any order (decode order is not
            presentation order when a codec uses B-frames).
        end: when the last frame stops being shown, in the same unit.
        positions: 0 is the first frame's start, 1 the last frame's end.
    """
    shown = sorted(set(timestamps))
    start = shown[0]
    return [shown[max(0, bisect_right(shown, start + at * (end - start)) - 1)] for at in positions]


def _timeline(container: av.container.InputContainer, path: Path) -> tuple[list[int], int]:
    """The video stream's frame timestamps and its end, from its packets (no decoding)."""
    if not container.streams.video:
        raise ClipError(f"cannot decode {path.name}: no video track")
    stream = container.streams.video[0]
    timestamps, durations, packets = [], {}, 0
    for packet in container.demux(stream):
        if packet.size == 0:  # the empty packet that ends every demuxed stream
            continue
        packets += 1
        if packet.pts is not None and not packet.is_discard:
            timestamps.append(packet.pts)
            durations[packet.pts] = packet.duration or 0
    _check_complete(stream, packets, path)
    if not timestamps:
        raise ClipError(f"cannot decode {path.name}: no video frame has a timestamp")
    shown = sorted(timestamps)
    last = shown[-1]
    gaps = [later - earlier for earlier, later in pairwise(shown)]
    return shown, last + (durations[last] or round(median(gaps or [1])))


def read_frames(path: Path, positions: Sequence[float]) -> list[Image.Image]:
    """The RGB frames on screen at ``positions`` (0 the clip's start, 1 its end), decoded
    up to the last of them."""
    with _decoding(path):
        with av.open(str(path)) as container:
            timestamps, end = _timeline(container, path)
        wanted = frames_at(timestamps, end, positions)
        images: dict[int, Image.Image] = {}
        with av.open(str(path)) as container:
            for frame in container.decode(container.streams.video[0]):
                if frame.pts in wanted and frame.pts not in images:
                    images[frame.pts] = frame.to_image()
                if len(images) == len(set(wanted)):
                    break
    if lost := sorted(set(wanted) - images.keys()):
        raise ClipError(f"cannot decode {path.name}: the frames at {lost} (pts) do not decode")
    return [images[pts] for pts in wanted]


def read_audio(path: Path) -> bytes:
    """The first audio track, resampled to 16 kHz mono 16-bit PCM (little-endian samples)."""
    with _decoding(path), av.open(str(path)) as container:
        if not container.streams.audio:
            raise ClipError("no audio track")
        stream = container.streams.audio[0]
        resampler = av.AudioResampler(format="s16", layout="mono", rate=SAMPLE_RATE)
        chunks, packets = [], 0
        for packet in container.demux(stream):
            packets += packet.size > 0
            for frame in packet.decode():  # the last, empty packet flushes the decoder
                chunks += [out.to_ndarray().astype("<i2").tobytes()
                           for out in resampler.resample(frame)]  # fmt: skip
        chunks += [out.to_ndarray().astype("<i2").tobytes() for out in resampler.resample(None)]
        _check_complete(stream, packets, path)
    if not (pcm := b"".join(chunks)):
        raise ClipError(f"cannot decode {path.name}: its audio track holds no samples")
    return pcm


# -- writing ----------------------------------------------------------------------------------


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Write ``path`` through ``write`` under a temporary name, then rename it into place.

    The temporary file is hidden (``.name.PID.part``) and removed if writing fails; a run killed
    outright may leave one behind, which no run reads.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.part")
    try:
        with temporary.open("wb") as file:
            write(file)
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def _save_image(image: Image.Image, suffix: str, quality: int, file: BinaryIO) -> None:
    image_format = IMAGE_FORMATS[suffix.lstrip(".")]
    options = {"quality": quality} if image_format == "JPEG" else {}
    image.save(file, format=image_format, **options)


def _save_wav(pcm: bytes, file: BinaryIO) -> None:
    with wave.open(file, "wb") as wav:
        wav.setnchannels(1)
        wav.setsampwidth(2)
        wav.setframerate(SAMPLE_RATE)
        wav.writeframes(pcm)
