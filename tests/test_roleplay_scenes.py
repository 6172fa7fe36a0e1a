"""Specification of the synthetic role-play scenes: structure, ceilings, determinism, caching."""

from __future__ import annotations

import json
import math
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from rolefusion.data import roleplay_scenes
from rolefusion.data.roleplay_scenes import (
    FILLER_WORDS,
    LOOKS,
    SPLITS,
    TEMPLATES,
    VOICES,
    RolePlayScenes,
    build_roles,
    ceilings,
    noisy_label,
    render_text,
)

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
    assert RolePlayScenes("unused").ceilings() == pytest.approx(expected)
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
    write_png = roleplay_scenes._write_png
    written = []

    def crash_after_five(image: Image.Image, path: Path) -> None:
        if len(written) == 5:
            raise OSError("disk full")
        written.append(path)
        write_png(image, path)

    monkeypatch.setattr(roleplay_scenes, "_write_png", crash_after_five)
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
