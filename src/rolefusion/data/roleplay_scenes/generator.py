"""The data set itself: labels, per-example random streams, files on disk, the cache directory.

:class:`RolePlayScenes` draws every example from its own ``(seed, split, index)`` streams with the
sibling renderers (``text``, ``images``, ``sound``), writes the PNG (and WAV) files and the JSONL
manifests, and renames the finished set into place. The only module that touches the disk.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import numpy as np
from annotated_types import Ge, Gt, Interval
from PIL import Image

from rolefusion.data.audio import write_wav
from rolefusion.data.roleplay_scenes.images import render_image, render_pair
from rolefusion.data.roleplay_scenes.interactions import (
    Scene,
    family_ceilings,
    interaction_family,
)
from rolefusion.data.roleplay_scenes.roles import (
    LOOKS,
    SOUNDS,
    VOICES,
    Role,
    _is_int,
    build_roles,
    ceilings,
    role_name,
    validate_label_noise,
    validate_structure,
)
from rolefusion.data.roleplay_scenes.sound import render_audio
from rolefusion.data.roleplay_scenes.text import (
    render_addressed_text,
    render_ordered_text,
    render_text,
)

# The package's name, not this module's, so log lines read as they did before the split.
logger = logging.getLogger(__package__)

GENERATOR_VERSION = 2
"""Bumped whenever the generator's output changes, so stale caches are never reused."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

# Per-example random streams. Seed-sequence entropy lists of different lengths that differ only
# by trailing zeros collide, so every stream uses four words and ends with a non-zero purpose.
_LABEL, _IMAGE, _TEXT, _ORDER, _AUDIO, _SCENE = 1, 2, 3, 4, 5, 6


def _rng(seed: int, split_id: int, index: int, stream: int) -> np.random.Generator:
    """An independent stream per example and purpose, so no example depends on another."""
    return np.random.default_rng([seed, split_id, index, stream])


def clean_roles(size: int, num_roles: int, seed: int, split_id: int) -> np.ndarray:
    """Each split cycles through the roles (balanced classes), in a seeded shuffled order."""
    order = _rng(seed, split_id, 0, _ORDER).permutation(size)
    return order % num_roles


def noisy_label(role: int, num_roles: int, label_noise: float, rng: np.random.Generator) -> int:
    """With probability ``label_noise``, a uniformly drawn *other* role; else the role itself."""
    if rng.random() >= label_noise:
        return role
    other = int(rng.integers(num_roles - 1))
    return other + (other >= role)


def _write_png(image: Image.Image, path: Path) -> None:
    """Write one image; kept separate so tests can simulate a crash mid-generation."""
    image.save(path, format="PNG")


def _write_wav(samples: np.ndarray, path: Path, sample_rate: int) -> None:
    """Write one clip (16-bit PCM mono); kept separate like :func:`_write_png`."""
    write_wav(path, samples, sample_rate)


class RolePlayScenes:
    """The synthetic role-play scenes data set, generated once into a cache directory.

    Args:
        root: where the cache lives; each parameter set gets its own subdirectory.
        num_train, num_val, num_test: examples per split.
        image_size: side of the square PNG images, in pixels.
        num_roles: number of classes (even, >= 4).
        ambiguity: how many roles share each look and each voice; the unimodal ceiling is about
            ``1 / ambiguity``.
        label_noise: probability that a label is swapped for another role; the fused ceiling is
            ``1 - label_noise``.
        seed: the data set's own seed, in ``[0, 2**32)``.
        audio: add a voice clip per example, whose sound carries part of the role (then
            ``ambiguity**2`` must divide ``num_roles``); off, the data set is exactly as without it.
        sample_rate: of the clips, in Hz (8000 to 48000); used only with ``audio``.
        audio_seconds: length of the clips (0.25 to 10); used only with ``audio``.
        interaction: how the modalities combine into the role (:mod:`.interactions`):
            ``redundant``, ``additive`` (the default), ``synergy`` or ``grounding``. Audio
            exists for ``additive`` only.
    """

    def __init__(
        self,
        root: str | Path,
        num_train: Annotated[int, Ge(1)] = 2000,
        num_val: Annotated[int, Ge(1)] = 500,
        num_test: Annotated[int, Ge(1)] = 500,
        image_size: Annotated[int, Ge(8)] = 64,
        num_roles: Annotated[int, Ge(2)] = 8,
        ambiguity: Annotated[int, Ge(1)] = 2,
        label_noise: Annotated[float, Interval(ge=0, lt=1)] = 0.05,
        seed: int = 0,
        audio: bool = False,
        sample_rate: Annotated[int, Ge(1)] = 8000,
        audio_seconds: Annotated[float, Gt(0)] = 0.5,
        interaction: str = "additive",
    ) -> None:
        for name, value in (("num_train", num_train), ("num_val", num_val), ("num_test", num_test)):
            if not _is_int(value) or value < 1:
                raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
        if not _is_int(image_size) or image_size < 16:
            raise ValueError(f"image_size must be an integer >= 16, got {image_size!r}")
        if not _is_int(seed) or not 0 <= seed < 2**32:
            raise ValueError(f"seed must be an integer in [0, 2**32), got {seed!r}")
        if not isinstance(audio, bool):
            raise ValueError(f"audio must be true or false, got {audio!r}")
        if not _is_int(sample_rate) or not 8000 <= sample_rate <= 48000:
            raise ValueError(
                f"sample_rate must be an integer in [8000, 48000], got {sample_rate!r}"
            )
        if (
            not isinstance(audio_seconds, int | float)
            or isinstance(audio_seconds, bool)
            or not 0.25 <= audio_seconds <= 10
        ):
            raise ValueError(f"audio_seconds must lie in [0.25, 10], got {audio_seconds!r}")
        self.family = interaction_family(interaction, num_roles, ambiguity)
        if audio and interaction != "additive":
            raise ValueError(
                f"audio clips exist for interaction=additive only, got interaction={interaction!r}"
            )
        if audio:
            validate_structure(num_roles, ambiguity, audio)
        validate_label_noise(label_noise, num_roles)
        self.root = Path(root)
        self.sizes = {"train": num_train, "val": num_val, "test": num_test}
        self.image_size = image_size
        self.num_roles = num_roles
        self.ambiguity = ambiguity
        self.label_noise = float(label_noise)
        self.seed = seed
        self.audio = audio
        self.sample_rate = sample_rate
        self.audio_seconds = float(audio_seconds)
        self.interaction = interaction
        self.roles = build_roles(num_roles, ambiguity, audio) if audio else self.family.roles

    @property
    def parameters(self) -> dict[str, int | float | str]:
        """Everything the generated files depend on, besides the generator version.

        The audio parameters appear only with ``audio``, and ``interaction`` only when it is not
        ``additive``, so today's scenes keep the parameters, cache directory and files they had
        before either existed; a family that does not use ``ambiguity`` leaves it out.
        """
        audio = {
            "audio": True,
            "sample_rate": self.sample_rate,
            "audio_seconds": self.audio_seconds,
        }
        parameters: dict[str, int | float | str] = {
            "num_train": self.sizes["train"],
            "num_val": self.sizes["val"],
            "num_test": self.sizes["test"],
            "image_size": self.image_size,
            "num_roles": self.num_roles,
            "ambiguity": self.ambiguity,
            "label_noise": self.label_noise,
            "seed": self.seed,
        }
        if not self.family.uses_ambiguity:
            del parameters["ambiguity"]
        if self.interaction != "additive":
            parameters["interaction"] = self.interaction
        return parameters | (audio if self.audio else {})

    @property
    def modalities(self) -> tuple[str, ...]:
        """What every example carries: image and text, and audio with ``audio``."""
        return ("image", "text", "audio") if self.audio else ("image", "text")

    @property
    def directory(self) -> Path:
        """The cache directory for these parameters: ``root / v{version}-{hash}``."""
        key = json.dumps(self.parameters, sort_keys=True).encode()
        return self.root / f"v{GENERATOR_VERSION}-{hashlib.sha256(key).hexdigest()[:12]}"

    def ceilings(self) -> dict[str, float]:
        """The best accuracy of each model class: ``fused``, ``additive`` (class scores a sum of
        one function per modality), ``image_only`` and ``text_only``
        (:func:`~.interactions.family_ceilings`).

        With audio, one per non-empty subset of modalities: ``fused`` (all three), ``image_only``,
        ``text_only``, ``audio_only``, ``image+text``, ``image+audio``, ``text+audio``; and
        ``additive``, equal to ``fused`` since the ring resolves by adding per-modality scores.
        """
        if not self.audio:
            return family_ceilings(self.family, self.label_noise)
        bounds = ceilings(self.num_roles, self.ambiguity, self.label_noise, audio=True)
        return bounds | {"additive": bounds["fused"]}

    def manifests(self, directory: Path | None = None) -> dict[str, Path]:
        """The manifest path of each split inside ``directory`` (default: the cache directory)."""
        base = self.directory if directory is None else directory
        return {split: base / f"{split}.jsonl" for split in SPLITS}

    def prepare(self) -> dict[str, Path]:
        """Generate once into :attr:`directory` and return the manifest of each split.

        A complete data set (``dataset.json`` is written last) is reused untouched. Otherwise the
        set is built in a temporary sibling and renamed into place in one step, so a crash never
        leaves a half-written :attr:`directory`, and of two racing processes the first rename wins.
        """
        target = self.directory
        if (target / "dataset.json").is_file():
            return self.manifests()
        self.root.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=self.root))
        try:
            logger.info("Generating synthetic role-play scenes into %s", target)
            self._generate(staging)
            staging.chmod(0o755)
            try:
                os.rename(staging, target)
            except OSError:
                if not (target / "dataset.json").is_file():
                    raise RuntimeError(
                        f"{target} exists but is not a complete data set; delete it and retry"
                    ) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return self.manifests()

    def manifest(self, split: str) -> Path:
        """One split's manifest, generating the data set first if it is not cached yet."""
        return self.prepare()[split]

    def _generate(self, directory: Path) -> None:
        """Write every split's images (and clips) and manifest, then ``dataset.json`` last."""
        for split_id, split in enumerate(SPLITS):
            (directory / "images" / split).mkdir(parents=True)
            if self.audio:
                (directory / "audio" / split).mkdir(parents=True)
            roles = clean_roles(self.sizes[split], self.num_roles, self.seed, split_id)
            records = [
                self._example(self.roles[int(role)], split_id, index, directory)
                for index, role in enumerate(roles)
            ]
            lines = "".join(json.dumps(record) + "\n" for record in records)
            (directory / f"{split}.jsonl").write_text(lines, encoding="utf-8")
        description = json.dumps(self.describe(), indent=2) + "\n"
        (directory / "dataset.json").write_text(description, encoding="utf-8")

    def _example(self, role: Role, split_id: int, index: int, directory: Path) -> dict[str, object]:
        """Draw, write and describe one example from its own (seed, split, index) streams."""
        split = SPLITS[split_id]
        streams = (_rng(self.seed, split_id, index, s) for s in (_LABEL, _IMAGE, _TEXT, _SCENE))
        label_rng, image_rng, text_rng, scene_rng = streams
        scene = self.family.scene(role, scene_rng)
        relative = f"images/{split}/{index:05d}.png"
        _write_png(self._render_image(scene, image_rng), directory / relative)
        label = noisy_label(role.index, self.num_roles, self.label_noise, label_rng)
        record: dict[str, object] = {
            "id": f"{split}-{index:05d}",
            "image": relative,
            "text": _render_text(scene, text_rng),
        }
        if self.audio:
            assert role.sound is not None
            clip = f"audio/{split}/{index:05d}.wav"
            audio_rng = _rng(self.seed, split_id, index, _AUDIO)
            sound = SOUNDS[role.sound]
            samples = render_audio(sound, self.sample_rate, self.audio_seconds, audio_rng)
            _write_wav(samples, directory / clip, self.sample_rate)
            record["audio"] = clip
        record |= {"label": role_name(label)} | scene.fields
        if self.audio:
            record["sound"] = role.sound
        return record | {"clean_label": role.name}

    def _render_image(self, scene: Scene, rng: np.random.Generator) -> Image.Image:
        """One figure anywhere in the frame, or two standing in their halves."""
        if len(scene.figures) == 1:
            return render_image(scene.figures[0].look, self.image_size, rng)
        left, right = (figure.look for figure in scene.figures)
        return render_pair(left, right, self.image_size, rng)

    def describe(self) -> dict[str, object]:
        """What ``dataset.json`` holds: parameters, version, splits, the roles table, ceilings.

        With audio each role also lists its sound, and ``audio`` describes the clips.
        """
        description: dict[str, object] = {
            "name": "roleplay_scenes",
            "generator_version": GENERATOR_VERSION,
            "interaction": self.interaction,
            "parameters": self.parameters,
            "splits": {
                split: {"manifest": f"{split}.jsonl", "size": size}
                for split, size in self.sizes.items()
            },
            "roles": [self._describe_role(role) for role in self.roles],
            "ceilings": self.ceilings(),
        }
        if self.audio:
            description["audio"] = {
                "format": "16-bit PCM mono WAV",
                "sample_rate": self.sample_rate,
                "seconds": self.audio_seconds,
                "samples": round(self.audio_seconds * self.sample_rate),
            }
        return description

    def _describe_role(self, role: Role) -> dict[str, object]:
        """One row of the roles table: its look and voice (and sound) in full."""
        entry: dict[str, object] = {"index": role.index, "name": role.name}
        if role.look is not None:
            look = LOOKS[role.look]
            entry["look"] = {"index": role.look, "description": look.describe()} | asdict(look)
        if role.voice is not None:
            entry["voice"] = {"index": role.voice} | asdict(VOICES[role.voice])
        entry |= self.family.role_extras(role)
        if role.sound is not None:
            sound = SOUNDS[role.sound]
            entry["sound"] = (
                {"index": role.sound}
                | asdict(sound)
                | {
                    "pitch_hz": list(sound.pitch_hz),
                    "harmonics": list(sound.harmonics),
                    "syllable_s": list(sound.syllable_s),
                    "gap_s": list(sound.gap_s),
                }
            )
        return entry


def _render_text(scene: Scene, rng: np.random.Generator) -> str:
    """The line: as the voice speaks it, framed by greeting and closing in the scene's order, or
    addressing one of the scene's characters."""
    if scene.opener is not None:
        return render_ordered_text(scene.voice, scene.opener == "greeting", rng)
    if scene.addressee is not None:
        return render_addressed_text(scene.voice, scene.addressee)
    return render_text(scene.voice, rng)
