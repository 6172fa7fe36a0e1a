"""Audio encoder: a log-mel spectrogram computed in torch, then a small 1-D CNN over time.

torchaudio is not a dependency, so the spectrogram is built here from ``torch.stft`` and a
triangular mel filterbank (HTK mel scale), both fixed buffers; it runs on whatever device the
module is on, inside the model, so the data pipeline only has to deliver waveforms.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from rolefusion.models.features import ModalityFeatures

LOG_FLOOR = 1e-6
"""Added to the mel power before the log, so digital silence stays finite."""


def hz_to_mel(hz: torch.Tensor | float) -> torch.Tensor:
    """HTK mel scale: ``2595 * log10(1 + hz / 700)``."""
    return 2595.0 * torch.log10(1.0 + torch.as_tensor(hz, dtype=torch.float64) / 700.0)


def mel_to_hz(mel: torch.Tensor | float) -> torch.Tensor:
    """Inverse of :func:`hz_to_mel`."""
    return 700.0 * (10.0 ** (torch.as_tensor(mel, dtype=torch.float64) / 2595.0) - 1.0)


def mel_filterbank(
    n_freqs: int, n_mels: int, sample_rate: int, f_min: float = 0.0, f_max: float | None = None
) -> torch.Tensor:
    """Triangular filters ``[n_mels, n_freqs]`` over the STFT bins ``0 .. sample_rate / 2``.

    Filter ``m`` rises from mel point ``m`` to ``m + 1`` and falls to ``m + 2``, for
    ``n_mels + 2`` points equally spaced on the mel scale between ``f_min`` and ``f_max``. The
    peaks are 1 (no area normalisation), as in torchaudio's default.

    Raises:
        ValueError: if a filter falls between two STFT bins and would stay empty (too many mel
            bins for this ``n_fft``), or if the band is empty.
    """
    f_max = sample_rate / 2 if f_max is None else f_max
    if not 0 <= f_min < f_max <= sample_rate / 2:
        raise ValueError(
            f"mel_filterbank: need 0 <= f_min < f_max <= sample_rate / 2, got f_min={f_min}, "
            f"f_max={f_max}, sample_rate={sample_rate}"
        )
    bins = torch.linspace(0.0, sample_rate / 2, n_freqs, dtype=torch.float64)
    low, high = float(hz_to_mel(f_min)), float(hz_to_mel(f_max))
    points = mel_to_hz(torch.linspace(low, high, n_mels + 2, dtype=torch.float64))
    lower, centre, upper = points[:-2, None], points[1:-1, None], points[2:, None]
    rising = (bins - lower) / (centre - lower)
    falling = (upper - bins) / (upper - centre)
    filters = torch.clamp(torch.minimum(rising, falling), min=0.0)
    empty = (filters.sum(dim=1) == 0).nonzero().flatten().tolist()
    if empty:
        raise ValueError(
            f"mel_filterbank: mel bins {empty} contain no STFT bin; lower n_mels ({n_mels}) or "
            f"raise n_fft (now {2 * (n_freqs - 1)})"
        )
    return filters.float()


class LogMelSpectrogram(nn.Module):
    """Waveform ``[B, 1, S]`` -> normalised log-mel spectrogram ``[B, n_mels, frames]``.

    ``frames = 1 + S // hop_length`` (the STFT is centred, zero-padded at the ends). Each
    utterance is normalised to zero mean and unit variance over all its time-frequency cells: this
    removes the recording's gain, but keeps the spectral shape (pitch, timbre), which per-bin
    normalisation would subtract away.

    Args:
        sample_rate: of the waveforms, in Hz; it must match the data (no resampling is done).
        n_fft: STFT size (and Hann window length), in samples.
        hop_length: STFT hop, in samples.
        n_mels: mel bins.
        f_min, f_max: band covered by the mel filters, in Hz (``f_max`` None: ``sample_rate / 2``).
    """

    def __init__(
        self,
        sample_rate: int = 8000,
        n_fft: int = 256,
        hop_length: int = 64,
        n_mels: int = 40,
        f_min: float = 0.0,
        f_max: float | None = None,
    ) -> None:
        super().__init__()
        self.n_fft, self.hop_length = n_fft, hop_length
        # Fixed buffers, not parameters: rebuilt identically from the config, so kept out of
        # checkpoints (persistent=False), but moved with the module to its device.
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)
        filters = mel_filterbank(n_fft // 2 + 1, n_mels, sample_rate, f_min, f_max)
        self.register_buffer("filters", filters, persistent=False)

    def forward(self, audio: torch.Tensor) -> torch.Tensor:
        if audio.dim() != 3 or audio.shape[1] != 1:
            raise ValueError(
                f"LogMelSpectrogram: expected audio [B, 1, S], got {tuple(audio.shape)}"
            )
        # In float32 whatever the model's precision: the STFT and the log need the range.
        spectrum = torch.stft(
            audio[:, 0].float(),
            self.n_fft,
            hop_length=self.hop_length,
            window=self.window.float(),
            center=True,
            pad_mode="constant",
            return_complex=True,
        )
        mel = self.filters.float() @ spectrum.abs().square()  # [B, n_mels, frames]
        log_mel = torch.log(mel + LOG_FLOOR)
        mean = log_mel.mean(dim=(1, 2), keepdim=True)
        std = log_mel.std(dim=(1, 2), keepdim=True)
        return ((log_mel - mean) / (std + 1e-5)).to(audio.dtype)


class LogMelCNN1d(nn.Module):
    """Log-mel spectrogram, then Conv1d-BN-GELU-maxpool blocks over time, a 1x1 conv to ``dim``.

    The mel bins are the input channels; each block halves the frames (rounding up, so any
    length works). Output tokens are the remaining frames: ``[B, ceil(frames / 2**blocks), D]``,
    e.g. 16 tokens for 0.5 s at 8 kHz with the defaults.

    Args:
        dim: shared feature width ``D`` of the run.
        sample_rate, n_fft, hop_length, n_mels, f_min, f_max: of the spectrogram
            (:class:`LogMelSpectrogram`); ``sample_rate`` must match the data.
        channels: output channels of each conv block.
        kernel_size: of the conv over time, odd.
    """

    def __init__(
        self,
        dim: int,
        *,
        sample_rate: int = 8000,
        n_fft: int = 256,
        hop_length: int = 64,
        n_mels: int = 40,
        f_min: float = 0.0,
        f_max: float | None = None,
        channels: Sequence[int] = (64, 128),
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        if not channels:
            raise ValueError("LogMelCNN1d: `channels` needs at least one conv block, got []")
        if kernel_size < 1 or kernel_size % 2 == 0:
            raise ValueError(f"LogMelCNN1d: `kernel_size` must be odd, got {kernel_size}")
        self.spectrogram = LogMelSpectrogram(sample_rate, n_fft, hop_length, n_mels, f_min, f_max)
        blocks: list[nn.Module] = []
        in_ch = n_mels
        for out_ch in channels:
            blocks += [
                nn.Conv1d(in_ch, out_ch, kernel_size, padding=kernel_size // 2, bias=False),
                nn.BatchNorm1d(out_ch),
                nn.GELU(),
                nn.MaxPool1d(2, ceil_mode=True),
            ]
            in_ch = out_ch
        self.body = nn.Sequential(*blocks)
        self.proj = nn.Conv1d(in_ch, dim, kernel_size=1)

    def num_tokens(self, num_samples: int) -> int:
        """How many tokens a clip of ``num_samples`` samples yields."""
        frames = 1 + num_samples // self.spectrogram.hop_length
        for _ in range(len(self.body) // 4):
            frames = math.ceil(frames / 2)
        return frames

    def forward(self, audio: torch.Tensor) -> ModalityFeatures:
        """``audio [B, 1, S]`` -> ``tokens [B, N, D]`` (frames), mask all True, ``pooled`` mean."""
        tokens = self.proj(self.body(self.spectrogram(audio))).transpose(1, 2)
        mask = torch.ones(tokens.shape[:2], dtype=torch.bool, device=tokens.device)
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=tokens.mean(dim=1), grid=None)
