"""Specifications of WAV input/output and of the log-mel 1-D CNN audio encoder."""

from __future__ import annotations

import math
import struct
import wave
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate
from omegaconf import OmegaConf

from rolefusion.config import register_configs
from rolefusion.config.checks import check_targets
from rolefusion.data.audio import read_wav, wav_sample_rate, write_wav
from rolefusion.models.encoders.audio import (
    LogMelCNN1d,
    LogMelSpectrogram,
    hz_to_mel,
    mel_filterbank,
    mel_to_hz,
)

CONF = Path(__file__).resolve().parents[1] / "conf"
B, D, SR = 2, 16, 8000


def sine(frequency: float, seconds: float = 0.5, sample_rate: int = SR) -> torch.Tensor:
    """A pure tone ``[1, 1, S]`` at amplitude 0.5."""
    t = torch.arange(round(seconds * sample_rate), dtype=torch.float64) / sample_rate
    return (0.5 * torch.sin(2 * math.pi * frequency * t)).float()[None, None]


# --- WAV files -----------------------------------------------------------------------------------


def test_wav_round_trip_is_exact_to_one_pcm_step(tmp_path: Path) -> None:
    samples = np.random.default_rng(0).uniform(-1, 1, 4000)
    samples[:4] = [-1.0, 1.0, 0.0, 0.5]
    write_wav(tmp_path / "a.wav", samples, SR)
    audio = read_wav(tmp_path / "a.wav", sample_rate=SR)
    assert audio.shape == (1, 4000) and audio.dtype == torch.float32
    assert np.abs(audio[0].numpy() - samples).max() <= 1 / 32768
    assert audio.min() >= -1 and audio.max() < 1
    assert wav_sample_rate(tmp_path / "a.wav") == SR


def test_wav_bytes_are_deterministic_and_out_of_range_samples_are_clipped(tmp_path: Path) -> None:
    samples = np.array([0.0, 2.0, -3.0, 0.25])
    write_wav(tmp_path / "a.wav", samples, SR)
    write_wav(tmp_path / "b.wav", samples[None], SR)  # [1, S] is accepted too
    assert (tmp_path / "a.wav").read_bytes() == (tmp_path / "b.wav").read_bytes()
    assert read_wav(tmp_path / "a.wav").tolist() == [[0.0, 32767 / 32768, -1.0, 0.25]]


@pytest.mark.parametrize(
    ("samples", "message"),
    [(np.zeros((2, 10)), "mono"), (np.array([0.0, np.nan]), "NaN")],
)
def test_write_wav_rejects_what_it_cannot_store(
    tmp_path: Path, samples: np.ndarray, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_wav(tmp_path / "a.wav", samples, SR)


def _raw_wav(path: Path, channels: int, width: int, frames: bytes) -> Path:
    with wave.open(str(path), "wb") as file:
        file.setnchannels(channels)
        file.setsampwidth(width)
        file.setframerate(SR)
        file.writeframes(frames)
    return path


def _float_wav(path: Path) -> Path:
    """A 32-bit IEEE float WAV (format tag 3), which ``wave`` cannot read."""
    data = struct.pack("<4f", 0.0, 0.5, -0.5, 0.25)
    fmt = struct.pack("<HHIIHH", 3, 1, SR, SR * 4, 4, 32)
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt
    body += b"data" + struct.pack("<I", len(data)) + data
    path.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda p: _raw_wav(p, 2, 2, b"\0" * 16), "mono"),
        (lambda p: _raw_wav(p, 1, 1, b"\x80" * 8), "16-bit"),
        (lambda p: _raw_wav(p, 1, 4, b"\0" * 16), "16-bit"),
        (_float_wav, "not a readable 16-bit PCM WAV"),
        (lambda p: p.write_bytes(b"this is not audio at all"), "not a readable"),
        (lambda p: p.write_bytes(b""), "not a readable"),
    ],
    ids=["stereo", "8-bit", "32-bit", "float", "garbage", "empty"],
)
def test_read_wav_names_the_file_it_cannot_read(
    tmp_path: Path, make: Callable[[Path], object], message: str
) -> None:
    path = tmp_path / "clip_under_test.wav"
    make(path)
    with pytest.raises(ValueError, match=message) as error:
        read_wav(path)
    assert "clip_under_test.wav" in str(error.value)


def test_read_wav_checks_the_sample_rate_and_a_missing_file(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", np.zeros(10), 16000)
    with pytest.raises(ValueError, match=r"a\.wav.*16000 Hz, expected 8000"):
        read_wav(tmp_path / "a.wav", sample_rate=8000)
    with pytest.raises(FileNotFoundError, match=r"missing\.wav"):
        read_wav(tmp_path / "missing.wav")


# --- log-mel spectrogram -------------------------------------------------------------------------


def test_mel_filterbank_is_non_negative_and_every_bin_has_support() -> None:
    filters = mel_filterbank(129, 40, SR)
    assert filters.shape == (40, 129)
    assert (filters >= 0).all() and (filters <= 1).all()
    assert (filters.sum(dim=1) > 0).all()
    # filters rise and fall once: their peaks move up in frequency
    peaks = filters.argmax(dim=1)
    assert (peaks[1:] >= peaks[:-1]).all() and peaks[-1] > peaks[0]
    assert hz_to_mel(1000.0).item() == pytest.approx(1000.0, abs=0.5)  # HTK: 1 kHz ~ 1000 mel
    assert mel_to_hz(hz_to_mel(3210.0)).item() == pytest.approx(3210.0)


def test_mel_filterbank_refuses_empty_bins_and_empty_bands() -> None:
    with pytest.raises(ValueError, match="n_mels"):
        mel_filterbank(33, 80, SR)  # n_fft = 64: too coarse for 80 mel bins
    with pytest.raises(ValueError, match="f_min"):
        mel_filterbank(129, 40, SR, f_min=3000.0, f_max=2000.0)


@pytest.mark.parametrize("mel_bin", [1, 9, 20, 33, 39])
def test_a_sine_at_a_mel_bins_centre_frequency_peaks_in_that_bin(mel_bin: int) -> None:
    spectrogram = LogMelSpectrogram(sample_rate=SR, n_fft=256, hop_length=64, n_mels=40)
    points = mel_to_hz(torch.linspace(0.0, hz_to_mel(SR / 2).item(), 42, dtype=torch.float64))
    centre = points[1 + mel_bin].item()  # e.g. bin 9 ~ 414 Hz, bin 20 ~ 1156 Hz
    log_mel = spectrogram(sine(centre))
    assert log_mel.shape == (1, 40, 1 + 4000 // 64)
    assert log_mel[0].mean(dim=1).argmax().item() == mel_bin


def test_log_mel_is_normalised_per_utterance_and_ignores_the_gain() -> None:
    spectrogram = LogMelSpectrogram()
    # a recording: a tone over background noise, well above the log floor at either gain
    noise = 0.01 * torch.randn(1, 1, 4000, generator=torch.Generator().manual_seed(0))
    quiet, loud = spectrogram(0.1 * (sine(440.0) + noise)), spectrogram(sine(440.0) + noise)
    assert loud.mean().item() == pytest.approx(0.0, abs=1e-5)
    assert loud.std().item() == pytest.approx(1.0, abs=1e-3)
    assert (quiet - loud).abs().mean() < 0.01  # only cells near the log floor differ at all
    assert torch.isfinite(spectrogram(torch.zeros(1, 1, 4000))).all()  # digital silence


# --- the encoder ---------------------------------------------------------------------------------


@pytest.mark.parametrize(("samples", "tokens"), [(4000, 16), (8000, 32), (100, 1)])
def test_log_mel_cnn1d_shapes(samples: int, tokens: int) -> None:
    encoder = LogMelCNN1d(D)
    feats = encoder(torch.randn(B, 1, samples) * 0.1)
    assert encoder.num_tokens(samples) == tokens
    assert feats.tokens.shape == (B, tokens, D)
    assert feats.mask.shape == (B, tokens) and feats.mask.dtype == torch.bool and feats.mask.all()
    assert feats.grid is None
    assert torch.allclose(feats.pooled, feats.tokens.mean(dim=1))
    assert torch.isfinite(feats.tokens).all()


def test_log_mel_cnn1d_gradients_reach_every_parameter() -> None:
    encoder = LogMelCNN1d(D, channels=(8, 16, 8), kernel_size=3, n_mels=32)
    feats = encoder(torch.randn(B, 1, 4000) * 0.1)
    (feats.tokens.square().mean() + feats.pooled.sum()).backward()
    for name, parameter in encoder.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # the spectrogram's window and filters are fixed buffers, kept out of checkpoints
    assert {name for name, _ in encoder.named_buffers()} >= {
        "spectrogram.window",
        "spectrogram.filters",
    }
    assert not any(key.startswith("spectrogram.") for key in encoder.state_dict())


def test_log_mel_cnn1d_rejects_bad_input_and_settings() -> None:
    with pytest.raises(ValueError, match=r"\[B, 1, S\]"):
        LogMelCNN1d(D)(torch.randn(B, 4000))
    with pytest.raises(ValueError, match="channels"):
        LogMelCNN1d(D, channels=())
    with pytest.raises(ValueError, match="kernel_size"):
        LogMelCNN1d(D, kernel_size=4)


# --- configs -------------------------------------------------------------------------------------


def test_cnn1d_yaml_instantiates_and_passes_the_config_checks() -> None:
    node = OmegaConf.load(CONF / "model" / "audio_encoder" / "cnn1d.yaml")
    root = OmegaConf.create({"data": {"sample_rate": 8000}, "model": {"audio_encoder": node}})
    check_targets(root)
    node = root.model.audio_encoder
    encoder = instantiate(node)(dim=D)
    assert isinstance(encoder, LogMelCNN1d)
    assert encoder(torch.zeros(B, 1, 4000)).tokens.shape == (B, 16, D)


def test_audio_encoder_none_composes_to_none() -> None:
    register_configs()
    with initialize_config_dir(config_dir=str(CONF), version_base="1.3"):
        none = compose("train", overrides=["model/audio_encoder=none"])
        cnn1d = compose("train", overrides=["model/audio_encoder=cnn1d"])
    assert none.model.audio_encoder is None
    assert cnn1d.model.audio_encoder._target_.endswith("LogMelCNN1d")
