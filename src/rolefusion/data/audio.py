"""WAV files in and out: 16-bit PCM mono, with the standard library's ``wave`` and numpy only.

torchaudio is not a dependency; this covers what the data sets here write and read. Samples are
floats in ``[-1, 1]`` scaled by 32768, the convention of most audio libraries, so a file read here
matches what they would read.
"""

from __future__ import annotations

import wave
from pathlib import Path

import numpy as np
import torch

PCM16_SCALE = 32768.0
"""Full scale of 16-bit PCM: sample ``x`` is stored as ``round(x * 32768)``, clipped to int16."""


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono ``samples`` (floats in ``[-1, 1]``, shape ``[S]`` or ``[1, S]``) as 16-bit PCM.

    Values outside ``[-1, 1]`` are clipped. The header holds no timestamp, so the same samples
    always give the same bytes.
    """
    array = np.asarray(samples, dtype=np.float64)
    if array.ndim == 2 and array.shape[0] == 1:
        array = array[0]
    if array.ndim != 1:
        raise ValueError(
            f"write_wav({path}): samples must be mono, [S] or [1, S], got {array.shape}"
        )
    if not np.isfinite(array).all():
        raise ValueError(f"write_wav({path}): samples contain NaN or infinity")
    if not isinstance(sample_rate, int) or isinstance(sample_rate, bool) or sample_rate < 1:
        raise ValueError(f"write_wav({path}): sample_rate must be a positive integer")
    pcm = np.clip(np.round(array * PCM16_SCALE), -32768, 32767).astype("<i2")
    with wave.open(str(path), "wb") as file:
        file.setnchannels(1)
        file.setsampwidth(2)
        file.setframerate(sample_rate)
        file.writeframes(pcm.tobytes())


def wav_sample_rate(path: str | Path) -> int:
    """The sample rate in a WAV file's header, without reading its samples."""
    try:
        with wave.open(str(path), "rb") as file:
            return file.getframerate()
    except (wave.Error, EOFError) as error:
        raise ValueError(f"{path}: not a readable WAV file ({error})") from None


def read_wav(path: str | Path, sample_rate: int | None = None) -> torch.Tensor:
    """Read a 16-bit PCM mono WAV file as a float32 tensor ``[1, S]`` with values in ``[-1, 1)``.

    Args:
        path: the file.
        sample_rate: if given, the file's sample rate must equal it (no resampling is done).

    Raises:
        ValueError: naming the file, if it is not a WAV file, not 16-bit PCM, not mono, or has
            another sample rate than ``sample_rate``.
        FileNotFoundError: if it does not exist.
    """
    try:
        with wave.open(str(path), "rb") as file:
            channels, width = file.getnchannels(), file.getsampwidth()
            rate, frames = file.getframerate(), file.getnframes()
            data = file.readframes(frames)
    except (wave.Error, EOFError) as error:  # e.g. "unknown format: 3" for float WAV
        raise ValueError(
            f"{path}: not a readable 16-bit PCM WAV file ({error or 'truncated'})"
        ) from None
    if width != 2:
        raise ValueError(f"{path}: expected 16-bit PCM samples, got {8 * width}-bit")
    if channels != 1:
        raise ValueError(f"{path}: expected mono audio, got {channels} channels")
    if sample_rate is not None and rate != sample_rate:
        raise ValueError(f"{path}: sample rate is {rate} Hz, expected {sample_rate} Hz")
    if len(data) != 2 * frames:
        raise ValueError(f"{path}: truncated, {len(data) // 2} of {frames} samples present")
    samples = np.frombuffer(data, dtype="<i2").astype(np.float32) / np.float32(PCM16_SCALE)
    return torch.from_numpy(samples).unsqueeze(0)
