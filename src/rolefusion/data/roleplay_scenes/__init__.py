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

The code is split by job: :mod:`.roles` (the catalogues, the role structure and the ceilings),
:mod:`.text`, :mod:`.images` and :mod:`.sound` (one renderer per modality), and :mod:`.generator`
(:class:`RolePlayScenes`: labels, random streams, files and the cache). Every public name is
re-exported here, so ``rolefusion.data.roleplay_scenes.RolePlayScenes`` stays the import path.
See ``docs/roleplay_scenes.md``.
"""

from rolefusion.data.roleplay_scenes.generator import (
    GENERATOR_VERSION,
    SPLITS,
    RolePlayScenes,
    clean_roles,
    noisy_label,
)
from rolefusion.data.roleplay_scenes.images import (
    BODY_U,
    COSTUME_SHAPES,
    DISTRACTOR_GREYS,
    FIGURE_ASPECT,
    PROPS,
    SKIN_TONES,
    Draw,
    PropDrawer,
    render_image,
    supersampling,
)
from rolefusion.data.roleplay_scenes.roles import (
    LOOKS,
    NUM_HARMONICS,
    REGISTERS,
    RGB,
    RHYTHMS,
    ROLE_NAMES,
    SOUNDS,
    TIMBRES,
    VOICES,
    Look,
    Role,
    Sound,
    Voice,
    build_roles,
    candidate_counts,
    ceilings,
    role_name,
    validate_label_noise,
    validate_structure,
)
from rolefusion.data.roleplay_scenes.sound import (
    GLIDE,
    NOISE_RANGE,
    PITCH_WOBBLE,
    RMS_RANGE,
    SKIP_SYLLABLE,
    render_audio,
)
from rolefusion.data.roleplay_scenes.text import FILLER_WORDS, MAX_FILLERS, TEMPLATES, render_text

__all__ = [
    "BODY_U",
    "COSTUME_SHAPES",
    "DISTRACTOR_GREYS",
    "FIGURE_ASPECT",
    "FILLER_WORDS",
    "GENERATOR_VERSION",
    "GLIDE",
    "LOOKS",
    "MAX_FILLERS",
    "NOISE_RANGE",
    "NUM_HARMONICS",
    "PITCH_WOBBLE",
    "PROPS",
    "REGISTERS",
    "RGB",
    "RHYTHMS",
    "RMS_RANGE",
    "ROLE_NAMES",
    "SKIN_TONES",
    "SKIP_SYLLABLE",
    "SOUNDS",
    "SPLITS",
    "TEMPLATES",
    "TIMBRES",
    "VOICES",
    "Draw",
    "Look",
    "PropDrawer",
    "Role",
    "RolePlayScenes",
    "Sound",
    "Voice",
    "build_roles",
    "candidate_counts",
    "ceilings",
    "clean_roles",
    "noisy_label",
    "render_audio",
    "render_image",
    "render_text",
    "role_name",
    "supersampling",
    "validate_label_noise",
    "validate_structure",
]
