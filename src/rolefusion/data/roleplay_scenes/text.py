"""Text: a voice speaks. A shared template filled with the voice's own words, plus fillers."""

from __future__ import annotations

import numpy as np

from rolefusion.data.roleplay_scenes.roles import Voice

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


def render_ordered_text(voice: Voice, greeting_first: bool, rng: np.random.Generator) -> str:
    """A line framed by the voice's greeting and closing, in the order given.

    Both phrases are always there, so only their order tells the two apart: a bag of words
    cannot, and neither can a shuffled line.
    """
    opener, ender = (voice.greeting, voice.closing) if greeting_first else (
        voice.closing, voice.greeting)  # fmt: skip
    return f"{opener}, {render_text(voice, rng)} {ender}."


def address(costume: str) -> str:
    """How a line opens when it speaks to the character wearing ``costume``."""
    return f"you in the {costume}"


def render_addressed_text(voice: Voice, costume: str) -> str:
    """The address to the character wearing ``costume`` and ``voice``'s greeting
    (``interaction=grounding``; why no more, see :class:`~.interactions.Grounding`)."""
    return f"{address(costume)}, {voice.greeting}."
