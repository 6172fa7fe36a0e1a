"""What a role is made of and how roles share it: looks, voices, sounds, structure, ceilings.

The catalogues (:data:`LOOKS`, :data:`VOICES`, :data:`SOUNDS` with the registers, timbres and
rhythms a sound is named by) are plain data; :func:`build_roles` assigns them to roles so that
each look and voice (and, with audio, each sound) is shared ``ambiguity``-fold, and
:func:`ceilings` gives the best accuracy each subset of modalities allows. Nothing here draws,
writes or renders, so the renderers and the generator can all depend on this module.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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


@dataclass(frozen=True)
class Role:
    """One class of the data set: the look it wears, the voice it speaks with (and its sound)."""

    index: int
    name: str
    look: int | None
    voice: int | None
    sound: int | None = None


def role_name(index: int) -> str:
    """The readable name of role ``index``."""
    return ROLE_NAMES[index] if index < len(ROLE_NAMES) else f"role_{index}"


def validate_num_roles(num_roles: int) -> None:
    """Raise ``ValueError`` unless ``num_roles`` is an even integer >= 4, as every family needs."""
    if not _is_int(num_roles) or num_roles < 4 or num_roles % 2:
        raise ValueError(f"num_roles must be an even integer >= 4, got {num_roles!r}")


def validate_structure(num_roles: int, ambiguity: int, audio: bool = False) -> None:
    """Raise ``ValueError`` unless the roles can share looks and voices ``ambiguity``-fold.

    There are ``n = num_roles / ambiguity`` looks and as many voices. A look's roles speak with
    ``ambiguity`` consecutive voices, which must be distinct, hence ``n >= ambiguity``. With
    audio the looks and voices are shared by the ``num_roles / ambiguity`` base roles instead, so
    ``n = num_roles / ambiguity**2``, and ``ambiguity`` sounds must be defined.
    """
    validate_num_roles(num_roles)
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


def _is_int(value: object) -> bool:
    """Booleans are ints to Python, but ``num_roles=True`` is a mistake worth reporting."""
    return isinstance(value, int) and not isinstance(value, bool)
