"""A word-level tokenizer trained on the training split with HF ``tokenizers``.

Trained per run on training texts only, so no vocabulary leaks from validation or test,
and saved with the run so that evaluation tokenizes exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


def train_word_tokenizer(
    texts: Iterable[str], vocab_size: int, min_frequency: int = 1
) -> Tokenizer:
    """Train a lower-casing, NFKC-normalizing word-level tokenizer; ``[PAD]`` gets id 0."""
    tokenizer = Tokenizer(WordLevel(unk_token=UNK_TOKEN))
    tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    trainer = WordLevelTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=[PAD_TOKEN, UNK_TOKEN],
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    return tokenizer


def pad_id(tokenizer: Tokenizer) -> int:
    """The id used for padding, read from the tokenizer rather than assumed."""
    token_id = tokenizer.token_to_id(PAD_TOKEN)
    if token_id is None:
        raise ValueError(f"tokenizer has no {PAD_TOKEN} token")
    return token_id
