"""Audio: a sound is heard. One voiced clip synthesised from a sound's register, timbre, rhythm.

A clip is a few voiced syllables separated by pauses. Each syllable is a harmonic tone (the
timbre's profile over a fundamental in the register) under a raised-cosine envelope. Pitch,
syllable count, timing and loudness vary per example; the clip's loudness is set at random after
synthesis, so loudness alone says nothing about the sound.
"""

from __future__ import annotations

import numpy as np

from rolefusion.data.roleplay_scenes.roles import Sound

PITCH_WOBBLE = 0.05
"""Each syllable's pitch is the clip's pitch times ``1 +- PITCH_WOBBLE`` (intonation)."""
GLIDE = 0.08
"""Within a syllable the pitch glides linearly by up to ``+- GLIDE`` of itself."""
SKIP_SYLLABLE = 0.2
"""Chance that a syllable slot stays silent: syllable counts and timing vary more."""
RMS_RANGE = (0.03, 0.1)
NOISE_RANGE = (0.001, 0.003)
"""Clip loudness (RMS over the whole clip, before noise) and the added white noise's std."""


def render_audio(
    sound: Sound, sample_rate: int, seconds: float, rng: np.random.Generator
) -> np.ndarray:
    """One clip of ``round(seconds * sample_rate)`` samples in ``[-1, 1]`` (float64, ``[S]``)."""
    size = round(seconds * sample_rate)
    pitch = rng.uniform(*sound.pitch_hz)
    (short, long), (pause_short, pause_long) = sound.syllable_s, sound.gap_s
    syllables: list[tuple[float, float]] = []
    start = rng.uniform(0.0, pause_long)
    while True:
        duration = rng.uniform(short, long)
        if start + duration > seconds:
            break
        if rng.random() >= SKIP_SYLLABLE:
            syllables.append((start, duration))
        start += duration + rng.uniform(pause_short, pause_long)
    if not syllables:  # at least one syllable, even in a clip shorter than the rhythm's pauses
        duration = min(rng.uniform(short, long), seconds)
        syllables.append((rng.uniform(0.0, seconds - duration), duration))

    frequency = np.zeros(size)
    envelope = np.zeros(size)
    for begin, duration in syllables:
        first, last = round(begin * sample_rate), min(size, round((begin + duration) * sample_rate))
        progress = np.linspace(0.0, 1.0, last - first, endpoint=False)
        centre = pitch * (1 + rng.uniform(-PITCH_WOBBLE, PITCH_WOBBLE))
        frequency[first:last] = centre * (1 + rng.uniform(-GLIDE, GLIDE) * (progress - 0.5))
        # Raised-cosine attack over the first 20% and release over the last 30%.
        shape = np.minimum(1.0, np.minimum(progress / 0.2, (1 - progress) / 0.3))
        envelope[first:last] = rng.uniform(0.5, 1.0) * np.sin(0.5 * np.pi * shape) ** 2

    voiced = np.flatnonzero(envelope)
    phase = 2 * np.pi * np.cumsum(frequency) / sample_rate + rng.uniform(0, 2 * np.pi)
    harmonics = np.asarray(sound.harmonics)
    order = np.arange(1, len(harmonics) + 1)
    keep = order * frequency.max() < 0.45 * sample_rate  # no aliasing above Nyquist
    tones = np.sin(np.outer(order[keep], phase[voiced]))
    signal = np.zeros(size)
    signal[voiced] = envelope[voiced] * (harmonics[keep] @ tones)

    gain = rng.uniform(*RMS_RANGE) / np.sqrt(np.mean(signal**2))
    gain = min(gain, 0.9 / np.abs(signal).max())  # never clip
    noise = rng.normal(0.0, rng.uniform(*NOISE_RANGE), size)
    return np.clip(gain * signal + noise, -1.0, 1.0)
