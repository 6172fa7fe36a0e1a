"""The interaction families of the synthetic scenes: their rules, their derived ceilings, and
oracles that read the rendered pixels and words (never the manifest's fields) reaching them."""

from __future__ import annotations

import json
import math
import random
from collections import Counter, defaultdict
from collections.abc import Callable, Hashable
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy.optimize import Bounds, LinearConstraint, milp

from rolefusion.commands.train import train
from rolefusion.data.roleplay_scenes import LOOKS, VOICES, RolePlayScenes, ceilings
from rolefusion.data.roleplay_scenes.interactions import (
    COSTUMES,
    INTERACTIONS,
    Cell,
    Family,
    Grounding,
    Synergy,
    family_ceilings,
    interaction_family,
)
from rolefusion.data.roleplay_scenes.text import address

from conftest import compose_config

ORACLE_SPLIT = 1500  # examples per family; one binomial sd of an accuracy is <= 0.013
ORACLE_SIZE = {"grounding": 96}  # pixels: enough for two smaller figures' outlines
DEFAULT_SIZE = 48  # and for every costume's colour


# --- oracles that read what a model reads ---------------------------------------------------


def costume_mask(pixels: np.ndarray) -> tuple[int, np.ndarray]:
    """The look whose costume colour most pixels of ``pixels [H, W, 3]`` lie within 30 of, and
    the mask of those pixels."""
    palette = np.array([look.rgb for look in LOOKS], dtype=float)
    distance = np.linalg.norm(pixels[:, :, None, :].astype(float) - palette, axis=-1)
    nearest = np.where(distance.min(-1) < 30, distance.argmin(-1), -1)
    look = Counter(nearest[nearest >= 0].tolist()).most_common(1)[0][0]
    return look, nearest == look


def is_robe(mask: np.ndarray) -> bool:
    """Whether the costume in ``mask [H, W]`` is cut as a robe (a triangle: narrow in its top
    quarter, wide in its bottom one) rather than as armour (a rectangle: as wide at both)."""
    widths = mask.sum(axis=1)
    widths = widths[widths > 0]
    quarter = max(1, len(widths) // 4)
    return widths[:quarter].mean() < 0.5 * widths[-quarter:].mean()


def read_image_cue(path: Path, interaction: str) -> Hashable:
    """The costume colour of the figure, or for ``grounding`` the colour in each half and the
    costume on the left, from the pixels."""
    pixels = np.asarray(Image.open(path).convert("RGB"))
    if interaction != "grounding":
        return costume_mask(pixels)[0]
    middle = pixels.shape[1] // 2
    (left, left_mask), (right, _) = (
        costume_mask(pixels[:, :middle]),
        costume_mask(pixels[:, middle:]),
    )
    return left, right, "robe" if is_robe(left_mask) else "armour"


def read_voice(text: str) -> int:
    """The voice whose own words the line uses."""
    words = set(text.replace(",", " ").replace(".", " ").replace("!", " ").split())
    (voice,) = {i for i, v in enumerate(VOICES) if words & set(v.words)}
    return voice


def read_text_cue(interaction: str, text: str) -> Hashable:
    """What the line says, in the family's cue space (see each family's ``cells``)."""
    if interaction == "grounding":
        (costume,) = [c for c in COSTUMES if text.startswith(address(c) + ",")]
        return costume
    voice = read_voice(text)
    if interaction == "synergy":
        return voice, 0 if text.startswith(VOICES[voice].greeting + ",") else 1
    return voice


def bayes_guess(cells: list[Cell], cue: Callable[[Cell], Hashable]) -> dict[Hashable, int]:
    """The likeliest role for each value of ``cue`` (ties: the lowest role)."""
    mass: dict[Hashable, Counter[int]] = defaultdict(Counter)
    for cell in cells:
        mass[cue(cell)][cell.role] += cell.weight
    return {value: min(c, key=lambda r: (-c[r], r)) for value, c in mass.items()}


def additive_scores(family: Family, image: Hashable, text: Hashable) -> np.ndarray:
    """An explicit model whose class scores are ``f_c(image) + g_c(text)``, built as each
    family's docstring says, to show that its additive ceiling is reached."""
    big, scores = 100.0, np.zeros(family.num_roles)
    for role in family.roles:
        c = role.index
        if isinstance(family, Synergy):
            looks = family.looks(role)
            f = (
                big * (image in looks)
                + (c % 2 == 0) * (0.0, 2.0)[looks.index(image) if image in looks else 0]
            )
            voice, y = text
            g = big * (voice == role.voice) + (c % 2 == 0) * (1.0, -1.0)[y]
        elif isinstance(family, Grounding):
            left, right, left_costume = image
            present = c in (left, right)
            in_armour = (c == left) == (left_costume == "armour")
            higher = c == max(left, right)
            f = big * present + 10.0 * (present and higher and in_armour)
            g = 0.1 * c * (1 if text == "robe" else -1)
        else:
            posterior_image = {cell.role for cell in family.cells() if cell.image == image}
            posterior_text = {cell.role for cell in family.cells() if cell.text == text}
            f, g = big * (c in posterior_image), big * (c in posterior_text)
        scores[c] = f + g
    return scores


Rendered = tuple[str, RolePlayScenes, list[dict]]


@pytest.fixture(scope="module")
def renders(tmp_path_factory) -> Callable[[str], Rendered]:
    """Each family's split, rendered once and read back by the oracles' readers."""
    cache: dict[str, Rendered] = {}

    def render(interaction: str) -> Rendered:
        if interaction not in cache:
            cache[interaction] = _render(interaction, tmp_path_factory)
        return cache[interaction]

    return render


@pytest.fixture(params=INTERACTIONS)
def rendered(request, renders) -> Rendered:
    return renders(request.param)


def _render(interaction: str, tmp_path_factory) -> Rendered:
    scenes = RolePlayScenes(
        tmp_path_factory.mktemp(interaction), num_train=ORACLE_SPLIT, num_val=1, num_test=1,
        image_size=ORACLE_SIZE.get(interaction, DEFAULT_SIZE), interaction=interaction,
    )  # fmt: skip
    manifest = scenes.prepare()["train"]
    records = [json.loads(line) for line in manifest.read_text().splitlines()]
    for record in records:
        record["image_cue"] = read_image_cue(manifest.parent / record["image"], interaction)
        record["text_cue"] = read_text_cue(interaction, record["text"])
    return interaction, scenes, records


def _tolerance(ceiling: float, n: int) -> float:
    return 4 * math.sqrt(ceiling * (1 - ceiling) / n) + 1e-9


@pytest.mark.parametrize("model_class", ["fused", "image_only", "text_only", "additive"])
def test_oracles_on_rendered_inputs_reach_each_derived_ceiling(rendered, model_class) -> None:
    interaction, scenes, records = rendered
    cells = scenes.family.cells()
    names = [role.name for role in scenes.roles]
    if model_class == "additive":
        guesses = [
            names[int(additive_scores(scenes.family, r["image_cue"], r["text_cue"]).argmax())]
            for r in records
        ]
    else:
        cue = {
            "fused": (lambda c: (c.image, c.text), lambda r: (r["image_cue"], r["text_cue"])),
            "image_only": (lambda c: c.image, lambda r: r["image_cue"]),
            "text_only": (lambda c: c.text, lambda r: r["text_cue"]),
        }[model_class]
        guess = bayes_guess(cells, cue[0])
        guesses = [names[guess[cue[1](r)]] for r in records]
    accuracy = np.mean([g == r["label"] for g, r in zip(guesses, records, strict=True)])
    ceiling = scenes.ceilings()[model_class]
    assert accuracy == pytest.approx(ceiling, abs=_tolerance(ceiling, len(records))), interaction


def test_the_pixel_and_word_readers_agree_with_what_was_drawn(rendered) -> None:
    """The oracles above are only as good as their readers: check them against the manifest."""
    interaction, _, records = rendered
    for record in records:
        if interaction == "grounding":
            assert record["image_cue"] == (*record["looks"], record["costumes"][0])
            assert record["text_cue"] == record["addressee"]
        else:
            assert record["image_cue"] == record["look"]
        if interaction == "synergy":
            assert record["text_cue"] == (record["voice"], int(record["opener"] == "closing"))
        elif interaction != "grounding":
            assert record["text_cue"] == record["voice"]


# --- ceilings ---------------------------------------------------------------------------------


def test_the_families_ceilings_for_the_defaults() -> None:
    p, r = 0.05, 8
    wrong = p / (r - 1)
    two, four = 0.95 / 2 + wrong / 2, 0.95 / 4 + 3 * wrong / 4  # two or four candidates left
    expected = {
        "redundant": {"fused": 0.95, "additive": 0.95, "image_only": 0.95, "text_only": 0.95},
        "additive": {"fused": 0.95, "additive": 0.95, "image_only": two, "text_only": two},
        "synergy": {"fused": 0.95, "additive": 0.75 * 0.95 + wrong / 4,
                    "image_only": four, "text_only": four},
        "grounding": {"fused": 0.95, "additive": 0.75 * 0.95 + wrong / 4,
                      "image_only": two, "text_only": 1 / 8},
    }  # fmt: skip
    for interaction, values in expected.items():
        scenes = RolePlayScenes("unused", interaction=interaction)
        assert scenes.ceilings() == pytest.approx(values), interaction


@pytest.mark.parametrize(("num_roles", "ambiguity"), [(8, 2), (12, 3), (16, 4), (24, 2)])
def test_enumerated_ceilings_of_the_ring_equal_the_closed_form(num_roles, ambiguity) -> None:
    closed = ceilings(num_roles, ambiguity, 0.05)
    enumerated = family_ceilings(interaction_family("additive", num_roles, ambiguity), 0.05)
    assert enumerated == pytest.approx(closed | {"additive": closed["fused"]})


def best_additive_share(cells: list[Cell], num_roles: int) -> float:
    """The largest share of ``cells`` any model scoring ``f_c(image) + g_c(text)`` gets right,
    solved exactly as a mixed-integer programme (one binary per cell: right or not)."""
    images = sorted({c.image for c in cells}, key=repr)
    texts = sorted({c.text for c in cells}, key=repr)
    n_f, n_g, n_z = len(images) * num_roles, len(texts) * num_roles, len(cells)
    bound, margin = 50.0, 1.0
    big = 4 * bound + margin
    rows, lower = [], []
    for k, cell in enumerate(cells):
        i, t = images.index(cell.image), texts.index(cell.text)
        for other in range(num_roles):
            if other == cell.role:
                continue
            row = np.zeros(n_f + n_g + n_z)
            row[i * num_roles + cell.role] += 1
            row[n_f + t * num_roles + cell.role] += 1
            row[i * num_roles + other] -= 1
            row[n_f + t * num_roles + other] -= 1
            row[n_f + n_g + k] = -big  # right (z = 1) needs a margin; wrong (z = 0) frees it
            rows.append(row)
            lower.append(margin - big)
    weights = np.array([c.weight for c in cells])
    objective = np.concatenate([np.zeros(n_f + n_g), -weights])
    result = milp(
        objective,
        constraints=LinearConstraint(np.array(rows), lower, np.inf),
        integrality=np.concatenate([np.zeros(n_f + n_g), np.ones(n_z)]),
        bounds=Bounds(
            np.r_[np.full(n_f + n_g, -bound), np.zeros(n_z)],
            np.r_[np.full(n_f + n_g, bound), np.ones(n_z)],
        ),
    )
    assert result.success, result.message
    return -result.fun / weights.sum()


@pytest.mark.parametrize(
    ("interaction", "num_roles"),
    [("redundant", 8), ("additive", 8), ("synergy", 8), ("grounding", 4), ("grounding", 6)],
)
def test_no_additive_model_beats_the_additive_share(interaction, num_roles) -> None:
    """The docstrings' argument, checked by an exact search over every additive model."""
    family = interaction_family(interaction, num_roles, 2)
    share = best_additive_share(family.cells(), num_roles)
    assert share == pytest.approx(family.additive_share, abs=1e-6)


def test_the_explicit_additive_models_reach_the_share_on_every_cell() -> None:
    for interaction in INTERACTIONS:
        family = interaction_family(interaction, 8, 2)
        cells = family.cells()
        right = [additive_scores(family, c.image, c.text).argmax() == c.role for c in cells]
        assert np.mean(right) == pytest.approx(family.additive_share), interaction


# --- what each family draws and says ----------------------------------------------------------


def test_synergy_bits_carry_nothing_alone_and_only_word_order_carries_the_lines(renders) -> None:
    _, scenes, records = renders("synergy")
    names = {role.name: role.index for role in scenes.roles}
    parity_by_look = defaultdict(Counter)
    for record in records:
        parity_by_look[record["look"]][names[record["clean_label"]] % 2] += 1
        opener = (
            VOICES[record["voice"]].greeting
            if record["opener"] == "greeting"
            else VOICES[record["voice"]].closing
        )
        assert record["text"].startswith(opener + ",")
    for counts in parity_by_look.values():  # each look shows both parities about equally
        assert min(counts.values()) / sum(counts.values()) > 0.4
    # The two orders use the same words: a bag of words cannot tell them apart.
    bags = {o: Counter() for o in ("greeting", "closing")}
    for record in records:
        if record["voice"] == 0:
            bags[record["opener"]].update(
                record["text"].replace(",", " ").replace(".", " ").split()
            )
    greeting, closing = VOICES[0].greeting.split()[0], VOICES[0].closing.split()[0]
    for word in (greeting, closing):
        shares = [bags[o][word] / sum(bags[o].values()) for o in bags]
        assert shares[0] == pytest.approx(shares[1], rel=0.15), word


def test_a_shuffled_synergy_line_keeps_its_words() -> None:
    """What the robustness suite's token shuffle does to a synergy line: the voice survives,
    the order (and with it the parity) does not."""
    scenes = RolePlayScenes("unused", interaction="synergy")
    rng = random.Random(0)
    line = "good morrow, by my honour! farewell."
    words = line.split()
    rng.shuffle(words)
    assert read_voice(" ".join(words)) == read_voice(line) == 0
    assert scenes.family.additive_share == 0.75


def test_grounding_puts_two_looks_and_both_costumes_in_every_scene(renders) -> None:
    _, scenes, records = renders("grounding")
    names = [role.name for role in scenes.roles]
    addressed_left = Counter(
        names[record["looks"][0]] == record["clean_label"] for record in records
    )
    assert abs(addressed_left[True] - addressed_left[False]) < 0.1 * len(records)
    assert all(record["looks"][0] != record["looks"][1] for record in records)
    assert all(sorted(record["costumes"]) == sorted(COSTUMES) for record in records)


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"interaction": "xor"}, "interaction must be one of"),
        ({"interaction": "synergy", "num_roles": 6}, "multiple of 4"),
        ({"interaction": "synergy", "num_roles": 8, "ambiguity": 4}, "base roles form the ring"),
        ({"interaction": "grounding", "num_roles": 14}, "num_roles \\(14\\) must be <= 12"),
        ({"interaction": "redundant", "num_roles": 16}, "num_roles \\(16\\) must be <= 12"),
        ({"interaction": "grounding", "audio": True}, "audio clips exist for interaction=additive"),
    ],
)
def test_bad_family_settings_are_refused_by_name(overrides, message) -> None:
    with pytest.raises(ValueError, match=message):
        RolePlayScenes("unused", **overrides)


def test_the_default_family_keeps_its_cache_directory_and_families_get_their_own() -> None:
    default = RolePlayScenes("root")
    assert default.directory == RolePlayScenes("root", interaction="additive").directory
    assert "interaction" not in default.parameters
    others = {RolePlayScenes("root", interaction=i).directory for i in INTERACTIONS}
    assert len(others) == len(INTERACTIONS)
    assert "ambiguity" not in RolePlayScenes("root", interaction="grounding").parameters


# --- what a run records -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("interaction", "fusion", "applies"),
    [("synergy", "late", "additive"), ("grounding", "image_only", "image_only"),
     ("additive", "concat", "fused")],
)  # fmt: skip
def test_a_run_records_the_ceiling_of_its_model_class(
    tmp_path, data_dir, interaction, fusion, applies
) -> None:
    cfg = compose_config(
        tmp_path, data_dir, f"data.source.interaction={interaction}", f"model/fusion={fusion}",
        "trainer.max_epochs=1", "logger=none", "callbacks=none",
    )  # fmt: skip
    train(cfg)
    recorded = json.loads((tmp_path / "run" / "metrics.json").read_text())["ceilings"]
    expected = RolePlayScenes("unused", interaction=interaction).ceilings()
    assert recorded == {"applies": applies, "accuracy": expected[applies], "all": expected}
