"""Synthetic role-play scenes: the default data set, built so that only fusion can reach the top.

A *role* is a pair of what is *seen* (a look: costume colour, costume shape, prop) and what is
*said* (a voice: vocabulary, catch-phrases, greeting, closing). Every look is worn by
``ambiguity`` roles and every voice is spoken by ``ambiguity`` roles, while each (look, voice)
pair names exactly one role. An image alone therefore narrows the role down to ``ambiguity``
candidates, the text alone to ``ambiguity`` others, and only both together identify it. With
label noise ``p`` the best possible accuracies are known in closed form (:func:`ceilings`), so a
fusion model can be judged against its ceiling rather than against a guess.

With ``audio=True`` every example also gets a voice clip (a WAV file) whose *sound* (pitch
register, timbre, rhythm) carries part of the role's identity: role ``r`` has sound
``r % ambiguity`` and its look and voice come from the ring above over ``num_roles / ambiguity``
base roles. Then every pair of modalities leaves ``ambiguity`` candidates and only all three
identify the role, so three-way fusion is needed to beat every two-way subset.

The set is written once, as PNG files plus JSONL manifests, and read back through the same
manifest loader as every real data set. Every example is drawn from its own random stream seeded
by ``(seed, split, index)``, so the files are byte-identical whatever process writes them.
See ``docs/roleplay_scenes.md``.
"""

from __future__ import annotations

import colorsys
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from rolefusion.data.audio import write_wav

logger = logging.getLogger(__name__)

GENERATOR_VERSION = 1
"""Bumped whenever the generator's output changes, so stale caches are never reused."""

SPLITS: tuple[str, ...] = ("train", "val", "test")

ROLE_NAMES: tuple[str, ...] = (
    "knight", "pirate", "wizard", "merchant", "thief", "healer", "bard", "guard",
    "scholar", "hunter", "monk", "jester", "sailor", "blacksmith", "alchemist", "ranger",
    "noble", "farmer", "priest", "squire", "herald", "witch", "smuggler", "innkeeper",
)  # fmt: skip
"""Readable role names; roles beyond this list are called ``role_{index}``."""

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Look:
    """What is seen: a costume in one saturated colour and shape, and a prop beside the figure."""

    colour: str
    rgb: RGB
    costume: str
    shape: str
    prop: str

    def describe(self) -> str:
        """A short human-readable description, e.g. ``"red robe with a sword"``."""
        article = "an" if self.prop[0] in "aeiou" else "a"
        return f"{self.colour} {self.costume} with {article} {self.prop}"


@dataclass(frozen=True)
class Voice:
    """What is said: a speech style with its own words, catch-phrases, greeting and closing."""

    style: str
    nouns: tuple[str, ...]
    adjectives: tuple[str, ...]
    catch_phrases: tuple[str, ...]
    greeting: str
    closing: str

    @property
    def words(self) -> tuple[str, ...]:
        """The voice-specific vocabulary: no other voice, template or filler uses these words."""
        return self.nouns + self.adjectives


@dataclass(frozen=True)
class Sound:
    """What is heard (with ``audio=True``): a voiced clip's pitch register, timbre and rhythm.

    The three are names into :data:`REGISTERS`, :data:`TIMBRES` and :data:`RHYTHMS`.
    """

    name: str
    register: str
    timbre: str
    rhythm: str

    @property
    def pitch_hz(self) -> tuple[float, float]:
        """The band the clip's fundamental frequency is drawn from."""
        return REGISTERS[self.register]

    @property
    def harmonics(self) -> tuple[float, ...]:
        """Amplitude of harmonics 1, 2, ... (the fundamental first)."""
        return TIMBRES[self.timbre]

    @property
    def syllable_s(self) -> tuple[float, float]:
        """Range of one syllable's duration, in seconds."""
        return RHYTHMS[self.rhythm][0]

    @property
    def gap_s(self) -> tuple[float, float]:
        """Range of the pause after a syllable, in seconds."""
        return RHYTHMS[self.rhythm][1]


# Costume colours are saturated hues; the first four (the default) and the first eight are spread
# around the colour wheel. Backgrounds are desaturated and distractors achromatic, so neither can
# be mistaken for a costume.
LOOKS: tuple[Look, ...] = (
    Look("red", (205, 35, 35), "robe", "triangle", "sword"),
    Look("blue", (35, 80, 215), "armour", "rectangle", "staff"),
    Look("yellow", (235, 200, 25), "cloak", "trapezoid", "crown"),
    Look("green", (35, 160, 55), "tunic", "ellipse", "shield"),
    Look("purple", (135, 45, 185), "robe", "triangle", "lantern"),
    Look("orange", (245, 125, 15), "armour", "rectangle", "book"),
    Look("teal", (15, 165, 165), "cloak", "trapezoid", "bow"),
    Look("pink", (240, 105, 175), "tunic", "ellipse", "flag"),
    Look("lime", (160, 225, 40), "robe", "triangle", "goblet"),
    Look("cyan", (90, 195, 250), "armour", "rectangle", "axe"),
    Look("maroon", (125, 20, 50), "cloak", "trapezoid", "key"),
    Look("magenta", (215, 0, 215), "tunic", "ellipse", "flower"),
)

VOICES: tuple[Voice, ...] = (
    Voice("courtly", ("honour", "realm", "courtesy", "sire", "dignity"),
          ("noble", "gracious", "splendid", "esteemed", "proper"),
          ("by my honour", "as is only fitting", "long live the throne"),
          "good morrow", "farewell"),
    Voice("seafaring", ("matey", "plunder", "barnacles", "grog", "doubloons"),
          ("salty", "shipshape", "seaworthy", "briny", "scurvy"),
          ("shiver me timbers", "yo ho ho", "dead men tell no tales"),
          "ahoy", "fair winds"),
    Voice("mystic", ("ether", "incantation", "omens", "runes", "prophecy"),
          ("arcane", "celestial", "astral", "enigmatic", "eldritch"),
          ("the stars foretell it", "so it is written"),
          "greetings seeker", "may the stars guide you"),
    Voice("haggling", ("bargain", "profit", "discount", "wares", "investment"),
          ("affordable", "lucrative", "cheap", "premium", "wholesale"),
          ("everything has its price", "a deal is a deal", "no refunds"),
          "welcome customer", "come back soon"),
    Voice("sly", ("loot", "pockets", "stash", "whispers", "alleys"),
          ("sneaky", "unseen", "slippery", "nimble", "quiet"),
          ("nobody saw a thing", "quick fingers quick wits"),
          "psst", "keep it hush"),
    Voice("caring", ("remedy", "herbs", "comfort", "warmth", "mending"),
          ("gentle", "soothing", "calm", "tender", "restful"),
          ("there there", "you will feel better soon", "breathe slowly"),
          "hello dear", "take care"),
    Voice("poetic", ("melody", "verse", "ballad", "chorus", "sonnet"),
          ("lyrical", "rhyming", "harmonious", "tuneful", "wistful"),
          ("sing along now", "tra la la"),
          "hark", "until the next song"),
    Voice("gruff", ("orders", "duty", "patrol", "curfew", "regulations"),
          ("vigilant", "secure", "forbidden", "strict", "official"),
          ("move along", "nothing to see here", "rules are rules"),
          "oi", "carry on"),
    Voice("scholarly", ("hypothesis", "evidence", "theory", "footnote", "treatise"),
          ("fascinating", "logical", "curious", "empirical", "rigorous"),
          ("according to my research", "how very interesting"),
          "ah hello", "i must return to my studies"),
    Voice("boastful", ("triumph", "glory", "champion", "legend", "victory"),
          ("mighty", "fearless", "unbeatable", "magnificent", "heroic"),
          ("behold my greatness", "none can match me"),
          "make way", "remember my name"),
    Voice("rustic", ("harvest", "barn", "cattle", "meadow", "crops"),
          ("muddy", "homegrown", "ripe", "dusty", "hearty"),
          ("early to bed early to rise", "mark my words"),
          "howdy", "mind the mud"),
    Voice("gloomy", ("doom", "dread", "despair", "woe", "ruin"),
          ("bleak", "dismal", "forsaken", "grim", "hopeless"),
          ("we are all doomed", "it only gets worse"),
          "oh it is you", "if we survive"),
)  # fmt: skip

TEMPLATES: tuple[str, ...] = (
    "{greeting}, what {adjective} {noun} we have here.",
    "{catch_phrase}! who speaks of {noun} and {noun2} at this hour?",
    "{greeting}. i have come for the {adjective} {noun}, {catch_phrase}.",
    "tell me of your {noun}, for mine is {adjective} and {adjective2}. {closing}.",
    "{catch_phrase}. nothing is more {adjective} than {noun}, {closing}.",
    "{greeting}, listen well: {noun}, {noun2} and {adjective} hearts. {catch_phrase}.",
)
"""Sentence frames shared by every voice; each one holds at least one voice-specific word."""

FILLER_WORDS: tuple[str, ...] = (
    "well", "truly", "now", "perhaps", "today", "then", "yes", "so", "really", "again",
    "still", "anyway", "hmm", "oh", "right", "just", "maybe", "honestly", "look", "see",
)  # fmt: skip
"""Distractor words shared by all voices: paraphrase variety that carries no information."""

MAX_FILLERS = 3

REGISTERS: dict[str, tuple[float, float]] = {
    "low": (85.0, 115.0),
    "mid": (170.0, 230.0),
    "high": (320.0, 420.0),
}
"""Fundamental-frequency bands in Hz; a clip's pitch is drawn uniformly from its band."""

NUM_HARMONICS = 16
TIMBRES: dict[str, tuple[float, ...]] = {
    # relative amplitude of harmonic k = 1..16; harmonics at or above 0.45 * sample_rate are dropped
    "bright": tuple(round(k**-0.8, 4) for k in range(1, NUM_HARMONICS + 1)),
    "dark": tuple(round(k**-3.0, 4) for k in range(1, NUM_HARMONICS + 1)),
    "hollow": tuple(round(k**-1.0, 4) if k % 2 else 0.0 for k in range(1, NUM_HARMONICS + 1)),
    "nasal": tuple(
        round(float(0.85 * np.exp(-(((k - 4) / 1.5) ** 2)) + 0.15 / k), 4)
        for k in range(1, NUM_HARMONICS + 1)
    ),
    "pure": (1.0, 0.15, 0.05),
}
"""Harmonic amplitude profiles: the spectral envelope that makes a timbre."""

RHYTHMS: dict[str, tuple[tuple[float, float], tuple[float, float]]] = {
    # (syllable duration range, pause range), in seconds
    "staccato": ((0.035, 0.06), (0.03, 0.06)),
    "measured": ((0.07, 0.11), (0.05, 0.09)),
    "legato": ((0.14, 0.22), (0.04, 0.08)),
}
"""Syllable pulse patterns: many short syllables, or few long ones."""

SOUNDS: tuple[Sound, ...] = (
    Sound("growl", "low", "bright", "legato"),
    Sound("chirp", "high", "pure", "staccato"),
    Sound("hum", "mid", "dark", "legato"),
    Sound("chatter", "mid", "hollow", "staccato"),
    Sound("wail", "high", "nasal", "legato"),
    Sound("mumble", "low", "dark", "measured"),
)
"""Sound classes: any two differ in register or timbre (the spectrum), most also in rhythm."""

SKIN_TONES: tuple[RGB, ...] = ((241, 194, 125), (224, 172, 105), (198, 134, 66), (141, 85, 36))
DISTRACTOR_GREYS: tuple[int, ...] = (240, 185, 115, 45)
"""Achromatic distractor shades: never a costume colour."""

# Per-example random streams. Seed-sequence entropy lists of different lengths that differ only
# by trailing zeros collide, so every stream uses four words and ends with a non-zero purpose.
_LABEL, _IMAGE, _TEXT, _ORDER, _AUDIO = 1, 2, 3, 4, 5


# ----------------------------------------------------------------------------------------------
# The role structure and its ceilings
# ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Role:
    """One class of the data set: the look it wears, the voice it speaks with (and its sound)."""

    index: int
    name: str
    look: int
    voice: int
    sound: int | None = None


def role_name(index: int) -> str:
    """The readable name of role ``index``."""
    return ROLE_NAMES[index] if index < len(ROLE_NAMES) else f"role_{index}"


def validate_structure(num_roles: int, ambiguity: int, audio: bool = False) -> None:
    """Raise ``ValueError`` unless the roles can share looks and voices ``ambiguity``-fold.

    There are ``n = num_roles / ambiguity`` looks and as many voices. A look's roles speak with
    ``ambiguity`` consecutive voices, which must be distinct, hence ``n >= ambiguity``. With
    audio the looks and voices are shared by the ``num_roles / ambiguity`` base roles instead, so
    ``n = num_roles / ambiguity**2``, and ``ambiguity`` sounds must be defined.
    """
    if not _is_int(num_roles) or num_roles < 4 or num_roles % 2:
        raise ValueError(f"num_roles must be an even integer >= 4, got {num_roles!r}")
    if not _is_int(ambiguity) or ambiguity < 1:
        raise ValueError(f"ambiguity must be an integer >= 1, got {ambiguity!r}")
    if audio:
        if num_roles % ambiguity**2:
            raise ValueError(
                f"with audio, ambiguity**2 ({ambiguity**2}) must divide num_roles ({num_roles})"
            )
        if ambiguity > len(SOUNDS):
            raise ValueError(
                f"with audio, ambiguity ({ambiguity}) needs as many sounds, but only "
                f"{len(SOUNDS)} are defined"
            )
    elif num_roles % ambiguity:
        raise ValueError(f"ambiguity ({ambiguity}) must divide num_roles ({num_roles})")
    groups = num_roles // ambiguity ** (2 if audio else 1)
    ratio = "num_roles / ambiguity**2" if audio else "num_roles / ambiguity"
    if groups < ambiguity:
        raise ValueError(
            f"ambiguity ({ambiguity}) is too large for num_roles ({num_roles}): "
            f"{ratio} = {groups} looks cannot carry {ambiguity} distinct voices each"
        )
    if groups > len(LOOKS):
        raise ValueError(
            f"{ratio} = {groups} needs {groups} looks and voices, but only "
            f"{len(LOOKS)} are defined: lower num_roles ({num_roles}) or raise ambiguity"
        )


def build_roles(num_roles: int, ambiguity: int, audio: bool = False) -> list[Role]:
    """Role ``r`` wears look ``r // a`` and speaks voice ``(r // a + r % a) % n``.

    So each look is worn by ``a`` roles with ``a`` different voices, each voice is spoken by ``a``
    roles with ``a`` different looks, and (look, voice) determines the role.

    With audio, role ``r`` has sound ``r % a`` and base role ``b = r // a``, and the base roles
    follow the ring above: look ``b // a``, voice ``(b // a + b % a) % n`` with
    ``n = R / a**2``. Then any two of (look, voice, sound) leave ``a`` candidates and all three
    determine the role.
    """
    validate_structure(num_roles, ambiguity, audio)
    if not audio:
        groups = num_roles // ambiguity
        return [
            Role(r, role_name(r), r // ambiguity, (r // ambiguity + r % ambiguity) % groups)
            for r in range(num_roles)
        ]
    groups = num_roles // ambiguity**2
    roles = []
    for r in range(num_roles):
        base, sound = divmod(r, ambiguity)
        look = base // ambiguity
        roles.append(Role(r, role_name(r), look, (look + base % ambiguity) % groups, sound))
    return roles


def validate_label_noise(label_noise: float, num_roles: int) -> None:
    """Label noise must keep the true role the likeliest label, or the ceilings stop holding."""
    limit = 1 - 1 / num_roles
    if not isinstance(label_noise, int | float) or not 0 <= label_noise <= limit:
        raise ValueError(
            f"label_noise must lie in [0, 1 - 1/num_roles] = [0, {limit:.4g}], got {label_noise!r}"
        )


def candidate_counts(num_roles: int, ambiguity: int, audio: bool = False) -> dict[str, int]:
    """How many equally likely roles each subset of modalities leaves (keys as in :func:`ceilings`).

    Without audio: ``a`` for the image or the text alone, 1 for both. With audio: ``a**2`` for the
    image or the text alone (a look or voice is shared by ``a`` base roles of ``a`` sounds each),
    ``R / a`` for the audio alone, ``a`` for any pair, 1 for all three.
    """
    validate_structure(num_roles, ambiguity, audio)
    a, r = ambiguity, num_roles
    if not audio:
        return {"fused": 1, "image_only": a, "text_only": a}
    return {
        "fused": 1,
        "image_only": a * a,
        "text_only": a * a,
        "audio_only": r // a,
        "image+text": a,
        "image+audio": a,
        "text+audio": a,
    }


def ceilings(
    num_roles: int, ambiguity: int, label_noise: float, audio: bool = False
) -> dict[str, float]:
    """Accuracy of a Bayes-optimal predictor that reads its cue perfectly.

    Fused: (look, voice) gives the role, whose label survives noise with probability ``1 - p``.
    Unimodal: the cue leaves ``a`` equally likely roles; guessing one of them is right if it is
    the role and the label survived (``(1 - p) / a``), or if another candidate's label was flipped
    onto it (``(a - 1) / a * p / (R - 1)``).

    In general a subset of modalities that leaves ``k`` equally likely candidates
    (:func:`candidate_counts`) has ceiling ``(1 - p) / k + p (k - 1) / (k (R - 1))``; with audio
    there is one ceiling per non-empty subset, ``fused`` being all three.
    """
    counts = candidate_counts(num_roles, ambiguity, audio)
    validate_label_noise(label_noise, num_roles)
    p, r = float(label_noise), num_roles
    return {name: (1 - p) / k + p * (k - 1) / (k * (r - 1)) for name, k in counts.items()}


# ----------------------------------------------------------------------------------------------
# Text: a voice speaks
# ----------------------------------------------------------------------------------------------


def render_text(voice: Voice, rng: np.random.Generator) -> str:
    """One utterance: a shared template filled with the voice's words, plus 0-3 filler words."""
    template = TEMPLATES[rng.integers(len(TEMPLATES))]
    nouns = rng.choice(len(voice.nouns), size=2, replace=False)
    adjectives = rng.choice(len(voice.adjectives), size=2, replace=False)
    sentence = template.format(
        greeting=voice.greeting,
        closing=voice.closing,
        catch_phrase=voice.catch_phrases[rng.integers(len(voice.catch_phrases))],
        noun=voice.nouns[nouns[0]],
        noun2=voice.nouns[nouns[1]],
        adjective=voice.adjectives[adjectives[0]],
        adjective2=voice.adjectives[adjectives[1]],
    )
    tokens = sentence.split(" ")
    for _ in range(rng.integers(MAX_FILLERS + 1)):
        tokens.insert(
            int(rng.integers(len(tokens) + 1)), FILLER_WORDS[rng.integers(len(FILLER_WORDS))]
        )
    return " ".join(tokens)


# ----------------------------------------------------------------------------------------------
# Image: a look is drawn
# ----------------------------------------------------------------------------------------------
# The figure is drawn on its own transparent layer in units of its height ``s``: it is 0.8 s wide,
# the body is centred at u = BODY_U, and the prop sits in u in [0.52, 0.78]. Flipping the layer
# puts the prop on the left.

FIGURE_ASPECT = 0.8
BODY_U = 0.28
Draw = ImageDraw.ImageDraw


def _xy(s: float, *uv: float) -> list[float]:
    """Scale unit coordinates by the figure height."""
    return [c * s for c in uv]


# The props. Each has a fixed colour and silhouette of its own, held in the prop column (the crown
# sits on the head), so that at 32 px a look is still told apart by prop as well as by hue.


def _draw_sword(draw: Draw, s: float) -> None:
    draw.polygon(
        _xy(s, 0.63, 0.72, 0.63, 0.2, 0.65, 0.14, 0.67, 0.2, 0.67, 0.72), fill=(205, 205, 215)
    )
    draw.rectangle(_xy(s, 0.56, 0.71, 0.74, 0.76), fill=(190, 150, 40))
    draw.rectangle(_xy(s, 0.63, 0.76, 0.67, 0.88), fill=(95, 55, 25))


def _draw_staff(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.14, 0.65, 0.99), fill=(120, 80, 40), width=max(1, round(0.045 * s)))
    draw.ellipse(_xy(s, 0.58, 0.04, 0.72, 0.18), fill=(225, 245, 255), outline=(150, 200, 230))


def _draw_crown(draw: Draw, s: float) -> None:
    u = BODY_U
    points = (u - 0.11, 0.11, u - 0.11, 0.01, u - 0.055, 0.06, u, 0.0, u + 0.055, 0.06,
              u + 0.11, 0.01, u + 0.11, 0.11)  # fmt: skip
    draw.polygon(_xy(s, *points), fill=(245, 195, 35), outline=(160, 110, 10))


def _draw_shield(draw: Draw, s: float) -> None:
    points = (0.52, 0.36, 0.78, 0.36, 0.78, 0.56, 0.65, 0.74, 0.52, 0.56)
    draw.polygon(
        _xy(s, *points), fill=(170, 170, 182), outline=(70, 70, 80), width=max(1, round(0.02 * s))
    )
    draw.ellipse(_xy(s, 0.61, 0.45, 0.69, 0.53), fill=(90, 90, 100))


def _draw_lantern(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.4, 0.65, 0.48), fill=(50, 50, 50), width=max(1, round(0.02 * s)))
    draw.rectangle(_xy(s, 0.57, 0.47, 0.73, 0.68), fill=(55, 55, 60))
    draw.rectangle(_xy(s, 0.59, 0.5, 0.71, 0.65), fill=(255, 238, 150))


def _draw_book(draw: Draw, s: float) -> None:
    draw.rectangle(_xy(s, 0.53, 0.46, 0.79, 0.66), fill=(110, 60, 30))
    draw.rectangle(_xy(s, 0.55, 0.48, 0.655, 0.64), fill=(250, 248, 235))
    draw.rectangle(_xy(s, 0.665, 0.48, 0.77, 0.64), fill=(250, 248, 235))


def _draw_bow(draw: Draw, s: float) -> None:
    width = max(1, round(0.04 * s))
    draw.arc(_xy(s, 0.44, 0.16, 0.76, 0.92), start=-75, end=75, fill=(125, 75, 30), width=width)
    # The string joins the arc's ends: centre (0.6, 0.54), radii (0.16, 0.38), angles +-75 deg.
    draw.line(_xy(s, 0.641, 0.173, 0.641, 0.907), fill=(235, 235, 235), width=max(1, width // 3))


def _draw_flag(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.58, 0.12, 0.58, 0.99), fill=(90, 70, 50), width=max(1, round(0.03 * s)))
    draw.polygon(
        _xy(s, 0.58, 0.12, 0.79, 0.21, 0.58, 0.3), fill=(245, 245, 245), outline=(90, 90, 90)
    )


def _draw_goblet(draw: Draw, s: float) -> None:
    draw.polygon(_xy(s, 0.55, 0.44, 0.75, 0.44, 0.69, 0.57, 0.61, 0.57), fill=(220, 175, 50))
    draw.rectangle(_xy(s, 0.635, 0.57, 0.665, 0.66), fill=(220, 175, 50))
    draw.rectangle(_xy(s, 0.58, 0.66, 0.72, 0.7), fill=(190, 145, 35))


def _draw_axe(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.6, 0.16, 0.6, 0.98), fill=(110, 70, 35), width=max(1, round(0.04 * s)))
    draw.pieslice(
        _xy(s, 0.48, 0.16, 0.8, 0.46), start=-90, end=90, fill=(175, 178, 188), outline=(80, 80, 90)
    )


def _draw_key(draw: Draw, s: float) -> None:
    width = max(1, round(0.035 * s))
    gold = (225, 180, 40)
    draw.ellipse(_xy(s, 0.57, 0.3, 0.73, 0.46), outline=gold, width=width)
    draw.line(_xy(s, 0.65, 0.46, 0.65, 0.8), fill=gold, width=width)
    draw.line(_xy(s, 0.65, 0.72, 0.73, 0.72), fill=gold, width=width)
    draw.line(_xy(s, 0.65, 0.79, 0.73, 0.79), fill=gold, width=width)


def _draw_flower(draw: Draw, s: float) -> None:
    draw.line(_xy(s, 0.65, 0.36, 0.65, 0.8), fill=(40, 90, 40), width=max(1, round(0.03 * s)))
    for du, dv in (
        (0.0, -0.07),
        (0.067, -0.022),
        (0.041, 0.057),
        (-0.041, 0.057),
        (-0.067, -0.022),
    ):
        draw.ellipse(_xy(s, 0.605 + du, 0.285 + dv, 0.695 + du, 0.375 + dv), fill=(250, 250, 250))
    draw.ellipse(_xy(s, 0.62, 0.3, 0.68, 0.36), fill=(250, 210, 40))


PropDrawer = Callable[[Draw, float], None]
PROPS: dict[str, tuple[PropDrawer, tuple[float, float] | None]] = {
    # name: (drawer, where the hand holds it in unit coordinates, or None for no arm)
    "sword": (_draw_sword, (0.65, 0.82)),
    "staff": (_draw_staff, (0.65, 0.55)),
    "crown": (_draw_crown, None),
    "shield": (_draw_shield, (0.56, 0.5)),
    "lantern": (_draw_lantern, (0.65, 0.42)),
    "book": (_draw_book, (0.56, 0.58)),
    "bow": (_draw_bow, (0.6, 0.54)),
    "flag": (_draw_flag, (0.58, 0.55)),
    "goblet": (_draw_goblet, (0.62, 0.52)),
    "axe": (_draw_axe, (0.6, 0.6)),
    "key": (_draw_key, (0.65, 0.62)),
    "flower": (_draw_flower, (0.65, 0.62)),
}

COSTUME_SHAPES: dict[str, tuple[float, ...]] = {
    # polygon (or ellipse box for "ellipse") in unit coordinates, body centred at BODY_U
    "triangle": (BODY_U, 0.25, BODY_U + 0.22, 0.99, BODY_U - 0.22, 0.99),
    "rectangle": (
        BODY_U - 0.15,
        0.28,
        BODY_U + 0.15,
        0.28,
        BODY_U + 0.15,
        0.96,
        BODY_U - 0.15,
        0.96,
    ),
    "trapezoid": (
        BODY_U - 0.09,
        0.28,
        BODY_U + 0.09,
        0.28,
        BODY_U + 0.23,
        0.99,
        BODY_U - 0.23,
        0.99,
    ),
    "ellipse": (BODY_U - 0.17, 0.27, BODY_U + 0.17, 0.99),
}


def _jitter(rgb: RGB, rng: np.random.Generator, amount: int = 14) -> RGB:
    """A small per-channel colour change, so no two costumes of a look are pixel-identical."""
    shifted = np.clip(np.asarray(rgb) + rng.integers(-amount, amount + 1, size=3), 0, 255)
    return (int(shifted[0]), int(shifted[1]), int(shifted[2]))


def _muted_colour(rng: np.random.Generator) -> RGB:
    """A desaturated colour of any hue: never confusable with a saturated costume."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.06, 0.28), rng.uniform(0.38, 0.92))
    return (round(rgb[0] * 255), round(rgb[1] * 255), round(rgb[2] * 255))


def _background(size: int, rng: np.random.Generator) -> Image.Image:
    """A flat colour, a linear gradient or stripes (straight or diagonal), in muted colours."""
    first = Image.new("RGB", (size, size), _muted_colour(rng))
    second = Image.new("RGB", (size, size), _muted_colour(rng))
    kind = rng.integers(3)
    if kind == 0:
        return first
    if kind == 1:
        mask = Image.linear_gradient("L").resize((size, size))
    else:
        period = rng.uniform(size / 10, size / 3)
        slope = int(rng.integers(-1, 2))
        # Stripe value along i + slope * j, looked up from one 1-D profile (cheap at any size).
        profile = ((np.arange(-size, 2 * size) // period) % 2 * 255).astype(np.uint8)
        offset = np.add.outer(np.arange(size), slope * np.arange(size)) + size
        mask = Image.fromarray(profile[offset], mode="L")
    if rng.random() < 0.5:
        mask = mask.transpose(Image.Transpose.TRANSPOSE)
    return Image.composite(second, first, mask)


def _draw_distractor(draw: Draw, size: int, rng: np.random.Generator) -> None:
    """A small grey shape somewhere in the scene: clutter that carries no information."""
    grey = int(
        np.clip(
            DISTRACTOR_GREYS[rng.integers(len(DISTRACTOR_GREYS))] + rng.integers(-10, 11), 0, 255
        )
    )
    radius = rng.uniform(0.05, 0.11) * size
    cx, cy = rng.uniform(radius, size - radius, size=2)
    box = [cx - radius, cy - radius, cx + radius, cy + radius]
    kind = rng.integers(3)
    if kind == 0:
        draw.ellipse(box, fill=(grey, grey, grey))
    elif kind == 1:
        draw.rectangle(box, fill=(grey, grey, grey))
    else:
        draw.polygon(
            [cx, cy - radius, cx + radius, cy + radius, cx - radius, cy + radius], fill=(grey,) * 3
        )


def _draw_figure(look: Look, height: int, rng: np.random.Generator) -> Image.Image:
    """The figure on a transparent layer: head, costume body, and the prop held at its side."""
    s = float(height)
    layer = Image.new("RGBA", (round(FIGURE_ASPECT * s), height), (0, 0, 0, 0))
    draw = ImageDraw.Draw(layer)
    skin = _jitter(SKIN_TONES[rng.integers(len(SKIN_TONES))], rng, amount=8)
    costume = _jitter(look.rgb, rng)
    prop, hand = PROPS[look.prop]
    if hand is not None:  # the arm goes first so the body covers the shoulder
        draw.line(_xy(s, BODY_U + 0.06, 0.38, *hand), fill=skin, width=max(1, round(0.05 * s)))
    shape = _xy(s, *COSTUME_SHAPES[look.shape])
    outline = tuple(c // 2 for c in costume)
    line_width = max(1, round(0.02 * s))
    if look.shape == "ellipse":
        draw.ellipse(shape, fill=costume, outline=outline, width=line_width)
    else:
        draw.polygon(shape, fill=costume, outline=outline, width=line_width)
    draw.ellipse(_xy(s, BODY_U - 0.1, 0.07, BODY_U + 0.1, 0.27), fill=skin)
    prop(draw, s)
    return layer


def supersampling(image_size: int) -> int:
    """Scenes are drawn 2-4x larger and downsampled with LANCZOS, for smooth edges."""
    return min(4, max(2, 256 // image_size))


def render_image(look: Look, image_size: int, rng: np.random.Generator) -> Image.Image:
    """A scene: varied background, 0-2 distractors, and the figure fully inside the frame."""
    size = image_size * supersampling(image_size)
    scene = _background(size, rng)
    draw = ImageDraw.Draw(scene)
    for _ in range(rng.integers(3)):
        _draw_distractor(draw, size, rng)
    height = int(rng.uniform(0.55, 0.9) * size)
    figure = _draw_figure(look, height, rng)
    if rng.random() < 0.5:
        figure = figure.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    margin = size // 32
    x = int(rng.integers(margin, size - figure.width - margin + 1))
    y = int(rng.integers(margin, size - figure.height - margin + 1))
    scene.paste(figure, (x, y), figure)
    return scene.resize((image_size, image_size), Image.Resampling.LANCZOS, reducing_gap=2.0)


# ----------------------------------------------------------------------------------------------
# Audio: a sound is heard
# ----------------------------------------------------------------------------------------------
# A clip is a few voiced syllables separated by pauses. Each syllable is a harmonic tone (the
# timbre's profile over a fundamental in the register) under a raised-cosine envelope. Pitch,
# syllable count, timing and loudness vary per example; the clip's loudness is set at random after
# synthesis, so loudness alone says nothing about the sound.

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


# ----------------------------------------------------------------------------------------------
# Examples and splits
# ----------------------------------------------------------------------------------------------


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


def _is_int(value: object) -> bool:
    """Booleans are ints to Python, but ``num_roles=True`` is a mistake worth reporting."""
    return isinstance(value, int) and not isinstance(value, bool)


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
    """

    def __init__(
        self,
        root: str | Path,
        num_train: int = 2000,
        num_val: int = 500,
        num_test: int = 500,
        image_size: int = 64,
        num_roles: int = 8,
        ambiguity: int = 2,
        label_noise: float = 0.05,
        seed: int = 0,
        audio: bool = False,
        sample_rate: int = 8000,
        audio_seconds: float = 0.5,
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
        self.roles = build_roles(num_roles, ambiguity, audio)

    @property
    def parameters(self) -> dict[str, int | float]:
        """Everything the generated files depend on, besides the generator version.

        The audio parameters appear only with ``audio``, so a set without audio keeps the same
        parameters, cache directory and files as before audio existed.
        """
        audio = {
            "audio": True,
            "sample_rate": self.sample_rate,
            "audio_seconds": self.audio_seconds,
        }
        return {
            "num_train": self.sizes["train"],
            "num_val": self.sizes["val"],
            "num_test": self.sizes["test"],
            "image_size": self.image_size,
            "num_roles": self.num_roles,
            "ambiguity": self.ambiguity,
            "label_noise": self.label_noise,
            "seed": self.seed,
        } | (audio if self.audio else {})

    @property
    def directory(self) -> Path:
        """The cache directory for these parameters: ``root / v{version}-{hash}``."""
        key = json.dumps(self.parameters, sort_keys=True).encode()
        return self.root / f"v{GENERATOR_VERSION}-{hashlib.sha256(key).hexdigest()[:12]}"

    def ceilings(self) -> dict[str, float]:
        """Bayes-optimal accuracies: ``fused``, ``image_only`` and ``text_only``.

        With audio, one per non-empty subset of modalities: ``fused`` (all three), ``image_only``,
        ``text_only``, ``audio_only``, ``image+text``, ``image+audio``, ``text+audio``.
        """
        return ceilings(self.num_roles, self.ambiguity, self.label_noise, self.audio)

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
        streams = (_rng(self.seed, split_id, index, s) for s in (_LABEL, _IMAGE, _TEXT))
        label_rng, image_rng, text_rng = streams
        relative = f"images/{split}/{index:05d}.png"
        _write_png(render_image(LOOKS[role.look], self.image_size, image_rng), directory / relative)
        label = noisy_label(role.index, self.num_roles, self.label_noise, label_rng)
        text = render_text(VOICES[role.voice], text_rng)
        if not self.audio:
            return {
                "id": f"{split}-{index:05d}",
                "image": relative,
                "text": text,
                "label": role_name(label),
                "look": role.look,
                "voice": role.voice,
                "clean_label": role.name,
            }
        assert role.sound is not None
        clip = f"audio/{split}/{index:05d}.wav"
        audio_rng = _rng(self.seed, split_id, index, _AUDIO)
        samples = render_audio(SOUNDS[role.sound], self.sample_rate, self.audio_seconds, audio_rng)
        _write_wav(samples, directory / clip, self.sample_rate)
        return {
            "id": f"{split}-{index:05d}",
            "image": relative,
            "text": text,
            "audio": clip,
            "label": role_name(label),
            "look": role.look,
            "voice": role.voice,
            "sound": role.sound,
            "clean_label": role.name,
        }

    def describe(self) -> dict[str, object]:
        """What ``dataset.json`` holds: parameters, version, splits, the roles table, ceilings.

        With audio each role also lists its sound, and ``audio`` describes the clips.
        """
        description: dict[str, object] = {
            "name": "roleplay_scenes",
            "generator_version": GENERATOR_VERSION,
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

    @staticmethod
    def _describe_role(role: Role) -> dict[str, object]:
        """One row of the roles table: its look and voice (and sound) in full."""
        look = LOOKS[role.look]
        entry: dict[str, object] = {
            "index": role.index,
            "name": role.name,
            "look": {"index": role.look, "description": look.describe()} | asdict(look),
            "voice": {"index": role.voice} | asdict(VOICES[role.voice]),
        }
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
