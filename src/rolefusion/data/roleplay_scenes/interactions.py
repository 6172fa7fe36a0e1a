"""How what is seen and what is said combine into the role: the four interaction families.

A family decides, for a role, what one example shows (its :class:`Scene`: the figures and the
line) and which cues the modalities carry (its :meth:`Family.cells`: every equally likely
combination of an image cue, a text cue and the role they imply). The ceilings follow from the
cells alone, by Bayes' rule over the cue each model class reads (:func:`family_ceilings`), so no
number is typed in:

- ``redundant``: each role has its own look and its own voice; either modality names it.
- ``additive``: the ring of :mod:`.roles` (today's scenes, the default): each modality leaves
  ``ambiguity`` candidates, and adding per-modality scores picks the one they share.
- ``synergy``: the role's last bit is the parity (XOR) of a prop in the picture and of the order
  of the greeting and the closing in the line; no model additive over modalities gets more than
  three of every four parity cells right.
- ``grounding``: two characters stand left and right, holding a lantern and a staff; the line
  addresses one by its prop and the label is that character's role. The picture leaves two
  candidates, the line none.

Nothing here draws or writes; the generator renders a :class:`Scene` with the sibling renderers.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import defaultdict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass, field, replace
from typing import ClassVar, Literal, get_args

import numpy as np

from rolefusion.data.roleplay_scenes.roles import (
    LOOKS,
    VOICES,
    Look,
    Role,
    Voice,
    build_roles,
    role_name,
    validate_num_roles,
    validate_structure,
)

Interaction = Literal["redundant", "additive", "synergy", "grounding"]
INTERACTIONS: tuple[Interaction, ...] = get_args(Interaction)

Side = Literal["left", "right"]
SIDES: tuple[Side, ...] = get_args(Side)

REFERENCE_COSTUMES: dict[str, str] = {"robe": "triangle", "armour": "rectangle"}
"""The costumes a ``grounding`` line names its addressee by, with the shape each is drawn in: each
scene's two characters wear one each. A robe comes to a point at the neck, armour is square at
the shoulders; at 32 px the difference is the outline's top few pixels, which blur erases long
before it erases the colours."""
COSTUMES: tuple[str, ...] = tuple(REFERENCE_COSTUMES)


@dataclass(frozen=True)
class Figure:
    """One character to draw: its look, and the half of the scene it stands in (None: anywhere)."""

    look: Look
    side: Side | None = None


@dataclass(frozen=True)
class Scene:
    """What one example shows, and what its manifest records about it for analysis.

    ``opener`` says which of the voice's greeting and closing opens the line (``synergy``);
    ``addressee`` the costume of the character the line speaks to (``grounding``); None leaves
    the line as it is.
    """

    figures: tuple[Figure, ...]
    voice: Voice
    fields: dict[str, object]
    opener: Literal["greeting", "closing"] | None = None
    addressee: str | None = None


@dataclass(frozen=True)
class Cell:
    """An equally likely combination of what the image says, what the text says, and the role."""

    image: Hashable
    text: Hashable
    role: int
    weight: float = field(default=1.0)


class Family(ABC):
    """One interaction family over ``num_roles`` roles: the roles, a scene per role, the cells.

    Attributes:
        additive_share: the largest share of cells that a model additive over modalities (class
            scores ``f_c(image) + g_c(text)``) can get right; the docstring of each family says
            why.
    """

    name: ClassVar[Interaction]
    additive_share: ClassVar[float] = 1.0
    uses_ambiguity: ClassVar[bool] = True

    def __init__(self, num_roles: int, ambiguity: int) -> None:
        self.num_roles = num_roles
        self.ambiguity = ambiguity
        self.roles = self.build_roles()

    @abstractmethod
    def build_roles(self) -> list[Role]:
        """The roles, after validating ``num_roles`` (and ``ambiguity``) for this family."""

    @abstractmethod
    def scene(self, role: Role, rng: np.random.Generator) -> Scene:
        """What an example of ``role`` shows; draws only the family's own choices from ``rng``."""

    @abstractmethod
    def cells(self) -> list[Cell]:
        """Every equally likely (image cue, text cue, role) combination."""

    def role_extras(self, role: Role) -> dict[str, object]:
        """What a role's row in ``dataset.json`` adds to its look and voice."""
        return {}


class Additive(Family):
    """The ring of :func:`~.roles.build_roles`: a look is worn by ``ambiguity`` roles, a voice
    spoken by ``ambiguity`` roles, and (look, voice) names one. The sum of one score per modality
    (``log p(role | look) + log p(role | voice)``) is highest for that role, so an additive model
    reaches the fused ceiling."""

    name = "additive"

    def build_roles(self) -> list[Role]:
        validate_structure(self.num_roles, self.ambiguity)
        return build_roles(self.num_roles, self.ambiguity)

    def scene(self, role: Role, rng: np.random.Generator) -> Scene:
        return Scene((Figure(LOOKS[role.look]),), VOICES[role.voice],
                     {"look": role.look, "voice": role.voice})  # fmt: skip

    def cells(self) -> list[Cell]:
        return [Cell(role.look, role.voice, role.index) for role in self.roles]


class Redundant(Additive):
    """Role ``r`` wears look ``r`` and speaks voice ``r``: the image alone names it, and so does
    the text. The ring with one role per look and voice; every ceiling is the fused one, so
    fusion can only add robustness here."""

    name = "redundant"
    uses_ambiguity = False

    def build_roles(self) -> list[Role]:
        _validate_one_look_per_role(self.name, self.num_roles)
        return build_roles(self.num_roles, 1)


class Synergy(Family):
    """Role ``r = 2b + s``: base role ``b`` follows the ring over ``num_roles / 2`` base roles, and
    its bit ``s = x XOR y`` is the parity of a bit ``x`` in the picture and a bit ``y`` in the
    line. The base role's look comes in two colours, looks ``2 l`` and ``2 l + 1`` (``x``); the
    line is framed by its voice's greeting and closing, greeting first (``y = 0``) or last. ``x``
    is drawn uniformly, so neither bit alone says anything about ``s``.

    Why an additive model stops at three quarters: fix a base role and look only at its two
    roles. An additive model prefers role ``2b`` by ``d = A(image) + B(text)``. Being right on all
    four (x, y) cells needs ``A0 + B0 > 0``, ``A1 + B1 > 0``, ``A0 + B1 < 0``, ``A1 + B0 < 0``;
    the first two sum to the same quantity as the last two, which cannot be both positive and
    negative. So at most three of the four cells are right, whatever the nuisances, and three
    are reachable (``A = (0, 2)``, ``B = (1, -1)``). Only word order carries ``y``: a shuffled
    line loses it.
    """

    name = "synergy"
    additive_share = 0.75

    def build_roles(self) -> list[Role]:
        validate_num_roles(self.num_roles)
        if self.num_roles % 4:
            raise ValueError(
                f"interaction=synergy splits num_roles / 2 base roles in two by a parity bit, and "
                f"the base roles form a ring, so num_roles must be a multiple of 4, got "
                f"{self.num_roles}"
            )
        try:
            validate_structure(self.num_roles // 2, self.ambiguity)
        except ValueError as error:
            raise ValueError(
                f"interaction=synergy: its num_roles / 2 = {self.num_roles // 2} base roles form "
                f"the ring of interaction=additive: {error}"
            ) from None
        looks = 2 * (self.num_roles // 2 // self.ambiguity)
        if looks > len(LOOKS):
            raise ValueError(
                f"interaction=synergy needs 2 * num_roles / (2 * ambiguity) = {looks} looks, but "
                f"only {len(LOOKS)} are defined: lower num_roles ({self.num_roles}) or raise "
                f"ambiguity ({self.ambiguity})"
            )
        self.bases = build_roles(self.num_roles // 2, self.ambiguity)
        return [
            Role(r, role_name(r), None, self.bases[r // 2].voice) for r in range(self.num_roles)
        ]

    def looks(self, role: Role) -> tuple[int, int]:
        """The two looks role ``role`` is seen in: its base role's look in two colours."""
        base_look = self.bases[role.index // 2].look
        return 2 * base_look, 2 * base_look + 1

    def scene(self, role: Role, rng: np.random.Generator) -> Scene:
        x = int(rng.integers(2))
        y = x ^ (role.index % 2)
        look = self.looks(role)[x]
        opener: Literal["greeting", "closing"] = "closing" if y else "greeting"
        fields = {"look": look, "voice": role.voice, "opener": opener}
        assert role.voice is not None
        return Scene((Figure(LOOKS[look]),), VOICES[role.voice], fields, opener=opener)

    def cells(self) -> list[Cell]:
        return [
            Cell(self.looks(role)[x], (role.voice, x ^ (role.index % 2)), role.index)
            for role in self.roles
            for x in (0, 1)
        ]

    def role_extras(self, role: Role) -> dict[str, object]:
        return {
            "looks": [{"index": i, "description": LOOKS[i].describe()} for i in self.looks(role)],
            "parity": role.index % 2,
            "rule": "look 2l+x, opener y (0: greeting first), parity x XOR y",
        }


class Grounding(Family):
    """Two characters stand in the scene, one per half, in two different looks' colours and
    props, one in a robe and one in armour (:data:`REFERENCE_COSTUMES`); the line addresses one
    by its costume ("you in the robe, ahoy.") and the label is the addressed one's role, role
    ``r`` wearing look ``r``'s colour. The picture leaves two candidates, the line none: which
    costume is named, and on which side, is independent of the role. The deciding detail is the
    costume's cut, a few pixels of outline at 32 px: a blurred picture keeps the colours and
    loses which is which.

    The line is the address and the voice's greeting only: the voice is drawn at random, and a
    full line of its words buried the address so deep that no fusion learnt the reference
    (docs/roleplay_scenes.md#interaction-families, learnability).

    An additive model stops at three quarters, by the argument of :class:`Synergy` applied to
    the four cells (A in the robe and B in armour, or the other way round) x (robe, armour
    named): the preference for A over B is ``D(picture) + E(named)``, right on all four only if
    ``D(A robe) + E(robe) > 0``, ``D(B robe) + E(armour) > 0``, ``D(A robe) + E(armour) < 0``
    and ``D(B robe) + E(robe) < 0``. Three of four are reachable for every pair at once (give
    each role a rank and let the name favour the higher rank;
    :func:`tests.test_interactions.additive_scores` builds it). Whether a fusion of pooled
    vectors learns what a fusion relating words to image regions does is not a theorem: it is
    what the benchmark measures.
    """

    name = "grounding"
    additive_share = 0.75
    uses_ambiguity = False

    def build_roles(self) -> list[Role]:
        _validate_one_look_per_role(self.name, self.num_roles)
        return [Role(r, role_name(r), r, None) for r in range(self.num_roles)]

    def scene(self, role: Role, rng: np.random.Generator) -> Scene:
        side = SIDES[int(rng.integers(2))]
        named = COSTUMES[int(rng.integers(2))]
        other = int(rng.integers(self.num_roles - 1))
        other += other >= role.index
        voice = int(rng.integers(len(VOICES)))
        costumes = {role.index: named, other: _other_costume(named)}
        order = (role.index, other) if side == "left" else (other, role.index)
        figures = tuple(
            Figure(replace(LOOKS[i], costume=costumes[i], shape=REFERENCE_COSTUMES[costumes[i]]), s)
            for i, s in zip(order, SIDES, strict=True)
        )
        fields = {"looks": list(order), "costumes": [costumes[i] for i in order],
                  "addressee": named, "voice": voice}  # fmt: skip
        return Scene(figures, VOICES[voice], fields, addressee=named)

    def cells(self) -> list[Cell]:
        cells = []
        for role in self.roles:
            for other in range(self.num_roles):
                if other == role.index:
                    continue
                for named in COSTUMES:
                    cells.append(Cell((role.index, other, named), named, role.index))
                    cells.append(
                        Cell((other, role.index, _other_costume(named)), named, role.index)
                    )
        return cells


def _other_costume(costume: str) -> str:
    """The reference costume that is not ``costume``."""
    return COSTUMES[1 - COSTUMES.index(costume)]


def _validate_one_look_per_role(interaction: str, num_roles: int) -> None:
    """The families that give each role its own look need as many looks as roles."""
    validate_num_roles(num_roles)
    if num_roles > len(LOOKS):
        raise ValueError(
            f"interaction={interaction} gives each role its own look, so num_roles "
            f"({num_roles}) must be <= {len(LOOKS)}"
        )


FAMILIES: dict[str, type[Family]] = {
    family.name: family for family in (Redundant, Additive, Synergy, Grounding)
}


def interaction_family(interaction: str, num_roles: int, ambiguity: int) -> Family:
    """The family named ``interaction`` over ``num_roles`` roles; ValueError names what is wrong."""
    if interaction not in INTERACTIONS:
        raise ValueError(f"interaction must be one of {INTERACTIONS}, got {interaction!r}")
    return FAMILIES[interaction](num_roles, ambiguity)


def bayes_accuracy(
    cells: Sequence[Cell], cue: Callable[[Cell], Hashable], num_roles: int, label_noise: float
) -> float:
    """Accuracy of the Bayes-optimal guess from ``cue(cell)``, with labels swapped for another
    role with probability ``label_noise``.

    For a cue value with role posterior ``q``, guessing role ``r`` is right with probability
    ``q_r (1 - p) + (1 - q_r) p / (R - 1)``, largest for the likeliest role while
    ``p <= 1 - 1/R``.
    """
    joint: dict[Hashable, dict[int, float]] = defaultdict(lambda: defaultdict(float))
    total = sum(cell.weight for cell in cells)
    for cell in cells:
        joint[cue(cell)][cell.role] += cell.weight / total
    p, r = label_noise, num_roles
    accuracy = 0.0
    for roles in joint.values():
        mass = sum(roles.values())
        best = max(roles.values()) / mass
        accuracy += mass * (best * (1 - p) + (1 - best) * p / (r - 1))
    return accuracy


def family_ceilings(family: Family, label_noise: float) -> dict[str, float]:
    """The best accuracy of each model class: ``fused`` (reads both), ``additive`` (scores a sum
    of one function per modality, as late fusion's are), ``image_only`` and ``text_only``.

    All but ``additive`` are Bayes accuracies over the family's cells; ``additive`` gets the
    family's :attr:`~Family.additive_share` of the cells right (each then right with
    probability ``1 - p``) and the rest wrong (right only when noise swapped the label onto the
    guess, ``p / (R - 1)``).
    """
    cells = family.cells()
    r, p = family.num_roles, label_noise
    share = family.additive_share
    bounds = {
        "fused": bayes_accuracy(cells, lambda c: (c.image, c.text), r, p),
        "additive": share * (1 - p) + (1 - share) * p / (r - 1),
        "image_only": bayes_accuracy(cells, lambda c: c.image, r, p),
        "text_only": bayes_accuracy(cells, lambda c: c.text, r, p),
    }
    return {name: round(value, 12) for name, value in bounds.items()}  # sums of many cells
