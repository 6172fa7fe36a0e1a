"""Specification of the synthetic role-play scenes: structure, ceilings, determinism, caching."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from rolefusion.data import roleplay_scenes
from rolefusion.data.audio import read_wav
from rolefusion.data.roleplay_scenes import (
    FILLER_WORDS,
    LOOKS,
    SOUNDS,
    SPLITS,
    TEMPLATES,
    VOICES,
    RolePlayScenes,
    build_roles,
    candidate_counts,
    ceilings,
    noisy_label,
    render_audio,
    render_text,
)
from rolefusion.models.encoders.audio import LogMelSpectrogram

Large = tuple[RolePlayScenes, dict[str, Path]]
SMALL = {"num_train": 40, "num_val": 10, "num_test": 10, "image_size": 32}


def tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text))


def read_manifest(path: Path) -> list[dict[str, object]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def all_files(directory: Path) -> dict[str, bytes]:
    return {
        str(path.relative_to(directory)): path.read_bytes()
        for path in sorted(directory.rglob("*"))
        if path.is_file()
    }


@pytest.fixture(scope="module")
def large(tmp_path_factory: pytest.TempPathFactory) -> Large:
    """A training split big enough for binomial checks; tiny images keep it to a few seconds."""
    scenes = RolePlayScenes(
        tmp_path_factory.mktemp("large"), num_train=2000, num_val=10, num_test=10, image_size=16
    )
    return scenes, scenes.prepare()


# --- determinism ---------------------------------------------------------------------------------


def test_same_parameters_give_byte_identical_files_in_any_root(tmp_path: Path) -> None:
    first = RolePlayScenes(tmp_path / "a", **SMALL)
    second = RolePlayScenes(tmp_path / "b", **SMALL)
    first.prepare(), second.prepare()
    assert first.directory.name == second.directory.name
    files = all_files(first.directory)
    assert len([name for name in files if name.endswith(".png")]) == 60
    assert files == all_files(second.directory)


def test_a_different_seed_gives_different_files(tmp_path: Path) -> None:
    first = RolePlayScenes(tmp_path, **SMALL)
    other = RolePlayScenes(tmp_path, **SMALL, seed=1)
    first.prepare(), other.prepare()
    assert first.directory != other.directory
    for split in SPLITS:
        name = f"{split}.jsonl"
        assert (first.directory / name).read_bytes() != (other.directory / name).read_bytes()
    png = "images/train/00000.png"
    assert (first.directory / png).read_bytes() != (other.directory / png).read_bytes()


def test_splits_differ_from_each_other(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL)
    scenes.prepare()
    images = {
        split: (scenes.directory / f"images/{split}/00000.png").read_bytes() for split in SPLITS
    }
    texts = {
        split: read_manifest(scenes.directory / f"{split}.jsonl")[0]["text"] for split in SPLITS
    }
    assert len(set(images.values())) == len(SPLITS)
    assert len(set(texts.values())) == len(SPLITS)


# --- structure -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("num_roles", "ambiguity"), [(4, 2), (8, 2), (8, 1), (12, 3), (16, 4), (18, 3), (24, 2)]
)
def test_every_look_and_voice_is_shared_by_exactly_ambiguity_roles(
    num_roles: int, ambiguity: int
) -> None:
    roles = build_roles(num_roles, ambiguity)
    assert [role.index for role in roles] == list(range(num_roles))
    looks = Counter(role.look for role in roles)
    voices = Counter(role.voice for role in roles)
    assert set(looks.values()) == {ambiguity}
    assert set(voices.values()) == {ambiguity}
    assert len({(role.look, role.voice) for role in roles}) == num_roles
    assert len({role.name for role in roles}) == num_roles


def test_roles_have_readable_names_then_numbered_ones() -> None:
    names = [role.name for role in build_roles(24, 2)]
    assert names[:8] == [
        "knight", "pirate", "wizard", "merchant", "thief", "healer", "bard", "guard",
    ]  # fmt: skip
    assert len(roleplay_scenes.ROLE_NAMES) >= 16
    assert roleplay_scenes.role_name(99) == "role_99"


def test_looks_differ_in_hue_and_prop_and_voices_are_distinct() -> None:
    assert len({look.colour for look in LOOKS}) == len(LOOKS)
    assert len({look.rgb for look in LOOKS}) == len(LOOKS)
    assert len({look.prop for look in LOOKS}) == len(LOOKS)
    assert set(roleplay_scenes.PROPS) == {look.prop for look in LOOKS}
    assert len(VOICES) == len(LOOKS)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"num_roles": 7}, "num_roles"),
        ({"num_roles": 2}, "num_roles"),
        ({"num_roles": 8, "ambiguity": 3}, "ambiguity"),
        ({"num_roles": 8, "ambiguity": 4}, "ambiguity"),
        ({"num_roles": 8, "ambiguity": 0}, "ambiguity"),
        ({"num_roles": 26, "ambiguity": 2}, "num_roles"),
        ({"label_noise": -0.1}, "label_noise"),
        ({"label_noise": 1.0}, "label_noise"),
        ({"label_noise": 0.9}, "label_noise"),
        ({"num_train": 0}, "num_train"),
        ({"num_val": 0}, "num_val"),
        ({"num_test": -1}, "num_test"),
        ({"image_size": 8}, "image_size"),
        ({"image_size": 32.0}, "image_size"),
        ({"seed": -1}, "seed"),
        ({"seed": 2**32}, "seed"),
    ],
)
def test_invalid_parameters_raise_value_error_naming_the_parameter(
    tmp_path: Path, overrides: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        RolePlayScenes(tmp_path, **overrides)  # type: ignore[arg-type]


# --- ceilings ------------------------------------------------------------------------------------


def test_ceilings_for_the_defaults() -> None:
    unimodal = 0.95 / 2 + 0.05 * 1 / (2 * 7)
    expected = {"fused": 0.95, "image_only": unimodal, "text_only": unimodal}
    # The scenes add the additive model class: the ring resolves by adding per-modality scores.
    assert RolePlayScenes("unused").ceilings() == pytest.approx(expected | {"additive": 0.95})
    assert ceilings(8, 2, 0.05) == pytest.approx(expected)
    assert unimodal == pytest.approx(0.4785714)


@pytest.mark.parametrize(("num_roles", "ambiguity"), [(4, 2), (8, 2), (12, 3), (16, 4)])
def test_ceilings_at_the_ends_of_the_noise_range(num_roles: int, ambiguity: int) -> None:
    clean = ceilings(num_roles, ambiguity, 0.0)
    assert clean == pytest.approx(
        {"fused": 1, "image_only": 1 / ambiguity, "text_only": 1 / ambiguity}
    )
    # At the largest noise allowed the labels are uniform, whatever the predictor sees.
    uniform = ceilings(num_roles, ambiguity, 1 - 1 / num_roles)
    assert list(uniform.values()) == pytest.approx([1 / num_roles] * 3)


def test_an_oracle_on_look_and_voice_reaches_the_fused_ceiling(large: Large) -> None:
    scenes, manifests = large
    records = read_manifest(manifests["train"])
    role_of = {(role.look, role.voice): role.name for role in scenes.roles}
    hits = sum(role_of[(r["look"], r["voice"])] == r["label"] for r in records)
    tolerance = 4 * math.sqrt(0.95 * 0.05 / len(records))
    assert hits / len(records) == pytest.approx(scenes.ceilings()["fused"], abs=tolerance)


def test_an_oracle_on_the_look_alone_reaches_the_unimodal_ceiling(large: Large) -> None:
    scenes, manifests = large
    records = read_manifest(manifests["train"])
    first_candidate = {role.look: role.name for role in reversed(scenes.roles)}
    hits = sum(first_candidate[r["look"]] == r["label"] for r in records)
    ceiling = scenes.ceilings()["image_only"]
    tolerance = 4 * math.sqrt(ceiling * (1 - ceiling) / len(records))
    assert hits / len(records) == pytest.approx(ceiling, abs=tolerance)


def test_observed_label_noise_is_close_to_its_rate_and_always_another_role(large: Large) -> None:
    scenes, manifests = large
    records = read_manifest(manifests["train"])
    flipped = [r for r in records if r["label"] != r["clean_label"]]
    tolerance = 4 * math.sqrt(0.05 * 0.95 / len(records))
    assert len(flipped) / len(records) == pytest.approx(0.05, abs=tolerance)
    assert {r["label"] for r in flipped} <= {role.name for role in scenes.roles}


def test_a_flipped_label_is_uniform_over_the_other_roles() -> None:
    draws = Counter(noisy_label(3, 8, 0.875, np.random.default_rng([i, 9])) for i in range(8000))
    assert set(draws) == set(range(8))
    assert all(count == pytest.approx(1000, abs=150) for count in draws.values())


# --- text ----------------------------------------------------------------------------------------


def test_voice_words_belong_to_one_voice_and_to_nothing_shared() -> None:
    shared = set(FILLER_WORDS) | tokens(" ".join(TEMPLATES))
    for voice in VOICES:
        own = set(voice.words)
        assert len(own) == len(voice.words) >= 10
        assert not own & shared, voice.style
        for other in VOICES:
            if other is not voice:
                material = " ".join(
                    (*other.words, *other.catch_phrases, other.greeting, other.closing)
                )
                assert not own & tokens(material), (voice.style, other.style)


def test_every_text_carries_its_voice_and_never_its_look(large: Large) -> None:
    _, manifests = large
    look_words = {w for look in LOOKS for w in (look.colour, look.costume, look.shape, look.prop)}
    for record in read_manifest(manifests["train"]):
        words = tokens(str(record["text"]))
        voice = VOICES[int(record["voice"])]
        assert words & set(voice.words), record
        others = {w for v in VOICES if v is not voice for w in v.words}
        assert not words & others, record
        assert not words & look_words, record
        assert 6 <= len(str(record["text"]).split()) <= 25, record


def test_a_voice_sounds_the_same_whatever_the_look(large: Large) -> None:
    scenes, manifests = large
    records = read_manifest(manifests["train"])
    all_voice_words = {w for voice in VOICES for w in voice.words}
    for voice_index in {role.voice for role in scenes.roles}:
        by_look: dict[int, set[str]] = {}
        for r in records:
            if r["voice"] == voice_index:
                by_look.setdefault(int(r["look"]), set()).update(tokens(str(r["text"])))
        assert len(by_look) == scenes.ambiguity
        for words in by_look.values():
            assert words & all_voice_words == set(VOICES[voice_index].words)


def test_a_voice_has_thousands_of_paraphrases() -> None:
    texts = {render_text(VOICES[0], np.random.default_rng([0, 0, i, 3])) for i in range(3000)}
    assert len(texts) > 2000


# --- layout and balance --------------------------------------------------------------------------


def test_manifest_layout_and_dataset_description(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL)
    manifests = scenes.prepare()
    assert manifests == {split: scenes.directory / f"{split}.jsonl" for split in SPLITS}
    for split, manifest in manifests.items():
        records = read_manifest(manifest)
        assert len(records) == SMALL[f"num_{split}"]
        for index, record in enumerate(records):
            assert list(record) == ["id", "image", "text", "label", "look", "voice", "clean_label"]
            assert record["id"] == f"{split}-{index:05d}"
            assert record["image"] == f"images/{split}/{index:05d}.png"
            with Image.open(manifest.parent / str(record["image"])) as image:
                assert (image.mode, image.size) == ("RGB", (32, 32))
    description = json.loads((scenes.directory / "dataset.json").read_text())
    assert description["generator_version"] == roleplay_scenes.GENERATOR_VERSION
    assert description["parameters"] == scenes.parameters
    assert description["ceilings"] == pytest.approx(scenes.ceilings())
    assert [role["name"] for role in description["roles"]] == [r.name for r in scenes.roles]
    assert description["roles"][0]["look"]["description"] == "red robe with a sword"
    assert description["roles"][0]["voice"]["style"] == "courtly"


def test_every_split_is_class_balanced(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, num_train=40, num_val=12, num_test=8, image_size=16)
    for manifest in scenes.prepare().values():
        counts = Counter(r["clean_label"] for r in read_manifest(manifest))
        assert set(counts) == {role.name for role in scenes.roles}
        assert max(counts.values()) - min(counts.values()) <= 1


# --- caching -------------------------------------------------------------------------------------


def test_prepare_reuses_a_complete_directory_untouched(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL)
    first = scenes.prepare()
    stamps = {path: path.stat().st_mtime_ns for path in scenes.directory.rglob("*")}
    assert RolePlayScenes(tmp_path, **SMALL).prepare() == first
    assert {path: path.stat().st_mtime_ns for path in scenes.directory.rglob("*")} == stamps
    assert list(tmp_path.iterdir()) == [scenes.directory]


def test_a_crash_midway_leaves_nothing_a_later_prepare_would_trust(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL)
    write_png = roleplay_scenes.generator._write_png
    written = []

    def crash_after_five(image: Image.Image, path: Path) -> None:
        if len(written) == 5:
            raise OSError("disk full")
        written.append(path)
        write_png(image, path)

    monkeypatch.setattr(roleplay_scenes.generator, "_write_png", crash_after_five)
    with pytest.raises(OSError, match="disk full"):
        scenes.prepare()
    assert not scenes.directory.exists()
    assert list(tmp_path.iterdir()) == []

    monkeypatch.undo()
    manifests = scenes.prepare()
    assert len(list(scenes.directory.rglob("*.png"))) == 60
    assert all(path.is_file() for path in manifests.values())


def test_losing_a_race_keeps_the_winners_data_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    generate = RolePlayScenes._generate
    calls = []

    def another_process_finishes_first(self: RolePlayScenes, directory: Path) -> None:
        calls.append(directory)
        if len(calls) == 1:
            generate(self, directory)
            RolePlayScenes(tmp_path, **SMALL).prepare()  # the rival renames into place first
        else:
            generate(self, directory)

    monkeypatch.setattr(RolePlayScenes, "_generate", another_process_finishes_first)
    scenes = RolePlayScenes(tmp_path, **SMALL)
    manifests = scenes.prepare()
    assert len(calls) == 2
    assert list(tmp_path.iterdir()) == [scenes.directory]
    assert not calls[0].exists()
    assert (scenes.directory / "dataset.json").is_file()
    assert all(path.is_file() for path in manifests.values())


# --- with audio ----------------------------------------------------------------------------------

SMALL_AUDIO = SMALL | {"audio": True}
CUES = {"image": "look", "text": "voice", "audio": "sound"}
SUBSETS = {
    "image_only": ("image",),
    "text_only": ("text",),
    "audio_only": ("audio",),
    "image+text": ("image", "text"),
    "image+audio": ("image", "audio"),
    "text+audio": ("text", "audio"),
    "fused": ("image", "text", "audio"),
}


@pytest.fixture(scope="module")
def large_audio(tmp_path_factory: pytest.TempPathFactory) -> Large:
    """The audio twin of :func:`large`: 2000 training examples with their clips."""
    scenes = RolePlayScenes(
        tmp_path_factory.mktemp("large_audio"),
        num_train=2000,
        num_val=10,
        num_test=10,
        image_size=16,
        audio=True,
    )
    return scenes, scenes.prepare()


def test_without_audio_the_audio_knobs_change_nothing(tmp_path: Path) -> None:
    plain = RolePlayScenes(tmp_path, **SMALL)
    ignored = RolePlayScenes(tmp_path, **SMALL, audio=False, sample_rate=16000, audio_seconds=2)
    assert ignored.parameters == plain.parameters
    assert "audio" not in plain.parameters and "sample_rate" not in plain.parameters
    assert ignored.directory == plain.directory
    assert ignored.describe() == plain.describe() and "audio" not in plain.describe()
    assert all(role.sound is None for role in plain.roles)
    assert plain.roles == build_roles(8, 2)


def test_with_audio_same_parameters_give_byte_identical_files_in_any_root(tmp_path: Path) -> None:
    first = RolePlayScenes(tmp_path / "a", **SMALL_AUDIO)
    second = RolePlayScenes(tmp_path / "b", **SMALL_AUDIO)
    first.prepare(), second.prepare()
    assert first.directory.name == second.directory.name
    assert first.directory.name != RolePlayScenes(tmp_path, **SMALL).directory.name
    files = all_files(first.directory)
    assert len([name for name in files if name.endswith(".wav")]) == 60
    assert files == all_files(second.directory)
    other = RolePlayScenes(tmp_path / "c", **SMALL_AUDIO, seed=1)
    other.prepare()
    wav = "audio/train/00000.wav"
    assert (first.directory / wav).read_bytes() != (other.directory / wav).read_bytes()


@pytest.mark.parametrize(
    ("num_roles", "ambiguity"), [(8, 2), (8, 1), (12, 2), (16, 2), (24, 2), (54, 3)]
)
def test_with_audio_every_pair_of_modalities_leaves_ambiguity_roles_and_all_three_one(
    num_roles: int, ambiguity: int
) -> None:
    roles = build_roles(num_roles, ambiguity, audio=True)
    assert [role.index for role in roles] == list(range(num_roles))
    assert {role.sound for role in roles} == set(range(ambiguity))
    counts = candidate_counts(num_roles, ambiguity, audio=True)
    for subset, modalities in SUBSETS.items():
        cues = [CUES[m] for m in modalities]
        groups = Counter(tuple(getattr(role, cue) for cue in cues) for role in roles)
        assert set(groups.values()) == {counts[subset]}, subset
    assert {counts[s] for s in ("image+text", "image+audio", "text+audio")} == {ambiguity}
    assert counts["fused"] == 1
    assert counts["image_only"] == counts["text_only"] == ambiguity**2
    assert counts["audio_only"] == num_roles // ambiguity


def test_with_audio_the_default_roles_form_a_cube() -> None:
    roles = RolePlayScenes("unused", audio=True).roles
    assert [(r.look, r.voice, r.sound) for r in roles] == [
        (0, 0, 0), (0, 0, 1), (0, 1, 0), (0, 1, 1), (1, 1, 0), (1, 1, 1), (1, 0, 0), (1, 0, 1),
    ]  # fmt: skip


def test_with_audio_the_ceilings_for_the_defaults() -> None:
    one_of_two = 0.95 / 2 + 0.05 * 1 / (2 * 7)
    one_of_four = 0.95 / 4 + 0.05 * 3 / (4 * 7)
    expected = {
        "fused": 0.95,
        "image_only": one_of_four,
        "text_only": one_of_four,
        "audio_only": one_of_four,
        "image+text": one_of_two,
        "image+audio": one_of_two,
        "text+audio": one_of_two,
    }
    with_additive = expected | {"additive": 0.95}
    assert RolePlayScenes("unused", audio=True).ceilings() == pytest.approx(with_additive)
    assert ceilings(8, 2, 0.05, audio=True) == pytest.approx(expected)
    assert one_of_four == pytest.approx(0.2428571)
    assert ceilings(8, 2, 0.05, audio=False) == ceilings(8, 2, 0.05)


@pytest.mark.parametrize(("num_roles", "ambiguity"), [(8, 2), (12, 2), (54, 3)])
def test_with_audio_ceilings_at_the_ends_of_the_noise_range(num_roles: int, ambiguity: int) -> None:
    counts = candidate_counts(num_roles, ambiguity, audio=True)
    clean = ceilings(num_roles, ambiguity, 0.0, audio=True)
    assert clean == pytest.approx({subset: 1 / k for subset, k in counts.items()})
    uniform = ceilings(num_roles, ambiguity, 1 - 1 / num_roles, audio=True)
    assert list(uniform.values()) == pytest.approx([1 / num_roles] * 7)


@pytest.mark.parametrize("subset", list(SUBSETS))
def test_with_audio_an_oracle_on_each_subset_reaches_its_ceiling(
    large_audio: Large, subset: str
) -> None:
    scenes, manifests = large_audio
    records = read_manifest(manifests["train"])
    cues = [CUES[m] for m in SUBSETS[subset]]
    first_candidate = {
        tuple(getattr(role, cue) for cue in cues): role.name for role in reversed(scenes.roles)
    }
    hits = sum(first_candidate[tuple(r[cue] for cue in cues)] == r["label"] for r in records)
    ceiling = scenes.ceilings()[subset]
    tolerance = 4 * math.sqrt(ceiling * (1 - ceiling) / len(records))
    assert hits / len(records) == pytest.approx(ceiling, abs=tolerance)


@pytest.mark.parametrize(
    ("overrides", "name"),
    [
        ({"num_roles": 8, "ambiguity": 3}, "ambiguity"),
        ({"num_roles": 12, "ambiguity": 3}, "ambiguity"),  # 9 does not divide 12
        ({"num_roles": 16, "ambiguity": 4}, "ambiguity"),  # 1 look cannot carry 4 voices
        ({"num_roles": 4, "ambiguity": 2}, "ambiguity"),
        ({"num_roles": 52, "ambiguity": 2}, "num_roles"),  # 13 looks, 12 defined
        ({"sample_rate": 4000}, "sample_rate"),
        ({"sample_rate": 8000.0}, "sample_rate"),
        ({"audio_seconds": 0.1}, "audio_seconds"),
        ({"audio_seconds": "1"}, "audio_seconds"),
        ({"audio": "yes"}, "audio"),
    ],
)
def test_with_audio_invalid_parameters_raise_value_error_naming_the_parameter(
    tmp_path: Path, overrides: dict[str, object], name: str
) -> None:
    with pytest.raises(ValueError, match=name):
        RolePlayScenes(tmp_path, **{"audio": True, **overrides})  # type: ignore[arg-type]


def test_with_audio_manifest_layout_clips_and_dataset_description(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL_AUDIO)
    manifests = scenes.prepare()
    sound_of = {role.name: role.sound for role in scenes.roles}
    for split, manifest in manifests.items():
        for index, record in enumerate(read_manifest(manifest)):
            assert list(record) == [
                "id", "image", "text", "audio", "label", "look", "voice", "sound", "clean_label",
            ]  # fmt: skip
            assert record["audio"] == f"audio/{split}/{index:05d}.wav"
            assert record["sound"] == sound_of[str(record["clean_label"])]
            clip = read_wav(manifest.parent / str(record["audio"]), sample_rate=8000)
            assert clip.shape == (1, 4000)
            assert 0.01 < clip.square().mean().sqrt() < 0.2 and clip.abs().max() < 1
    description = json.loads((scenes.directory / "dataset.json").read_text())
    assert description["parameters"] == scenes.parameters
    assert description["parameters"]["audio"] is True
    assert description["ceilings"] == pytest.approx(scenes.ceilings())
    assert description["audio"] == {
        "format": "16-bit PCM mono WAV", "sample_rate": 8000, "seconds": 0.5, "samples": 4000,
    }  # fmt: skip
    assert [role["sound"]["name"] for role in description["roles"]] == ["growl", "chirp"] * 4


def test_clip_length_and_rate_follow_the_parameters(tmp_path: Path) -> None:
    scenes = RolePlayScenes(tmp_path, **SMALL_AUDIO, sample_rate=16000, audio_seconds=0.3)
    manifest = scenes.prepare()["val"]
    record = read_manifest(manifest)[0]
    assert read_wav(manifest.parent / str(record["audio"]), sample_rate=16000).shape == (1, 4800)


def test_sounds_differ_in_spectrum_and_all_are_defined() -> None:
    for i, one in enumerate(SOUNDS):
        for other in SOUNDS[i + 1 :]:
            assert (one.register, one.timbre) != (other.register, other.timbre)
    assert len({sound.name for sound in SOUNDS}) == len(SOUNDS)
    for sound in SOUNDS:
        assert sound.pitch_hz[0] < sound.pitch_hz[1]
        assert sound.harmonics[0] > 0 and min(sound.harmonics) >= 0 and max(sound.harmonics) <= 1
        assert 0 < sound.syllable_s[0] < sound.syllable_s[1]


@pytest.fixture(scope="module")
def sound_clips() -> dict[int, np.ndarray]:
    """200 clips per sound, drawn as the generator draws them (stream 5 of its own seeds)."""
    return {
        s: np.stack(
            [
                render_audio(sound, 8000, 0.5, np.random.default_rng([7, s, i, 5]))
                for i in range(200)
            ]
        )
        for s, sound in enumerate(SOUNDS)
    }


def test_sounds_are_told_apart_by_their_mean_log_mel_spectrum(
    sound_clips: dict[int, np.ndarray],
) -> None:
    """Nearest centroid on the time-averaged log-mel spectrum: centroids from half, test on half."""
    spectrogram = LogMelSpectrogram(sample_rate=8000)
    spectra = {
        s: spectrogram(torch.as_tensor(clips, dtype=torch.float32)[:, None]).mean(dim=2).numpy()
        for s, clips in sound_clips.items()
    }
    centroids = np.stack([spectrum[:100].mean(axis=0) for spectrum in spectra.values()])
    held_out = np.concatenate([spectrum[100:] for spectrum in spectra.values()])
    truth = np.repeat(np.arange(len(SOUNDS)), 100)
    guess = ((held_out[:, None] - centroids[None]) ** 2).sum(axis=2).argmin(axis=1)
    assert (guess == truth).mean() >= 0.95


def test_loudness_alone_says_little_about_the_sound(sound_clips: dict[int, np.ndarray]) -> None:
    loudness = {s: np.log(np.sqrt((clips**2).mean(axis=1))) for s, clips in sound_clips.items()}
    centroids = np.array([values[:100].mean() for values in loudness.values()])
    held_out = np.concatenate([values[100:] for values in loudness.values()])
    truth = np.repeat(np.arange(len(SOUNDS)), 100)
    guess = np.abs(held_out[:, None] - centroids[None]).argmin(axis=1)
    assert (guess == truth).mean() < 2 / len(SOUNDS)  # chance is 1 / len(SOUNDS)


def test_clips_vary_within_a_sound() -> None:
    clips = [
        render_audio(SOUNDS[0], 8000, 0.5, np.random.default_rng([0, 0, i, 5])) for i in range(50)
    ]
    assert len({clip.tobytes() for clip in clips}) == 50
    voiced = [np.mean(np.abs(clip) > 0.02) for clip in clips]  # share of clip that is voiced
    assert np.std(voiced) > 0.03
