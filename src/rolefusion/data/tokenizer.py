"""Tokenizers: a word-level one trained on the training split, or a pretrained model's own.

The trained tokenizer sees training texts only, so no vocabulary leaks from validation or
test. Either way the tokenizer is saved with the run and inside every checkpoint, so that
evaluation tokenizes exactly as training did.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, normalizers, pre_tokenizers
from tokenizers.models import WordLevel
from tokenizers.trainers import WordLevelTrainer

from rolefusion.data.pretrained_text import load_tokenizer

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


class TokenizerRecipe:
    """How a run gets its tokenizer: trained on the training texts, or a pretrained model's own.

    Args:
        vocab_size: upper bound on the trained vocabulary, special tokens included.
        min_frequency: words seen fewer times in training become ``[UNK]``.
        pretrained: a pretrained text model (local directory or installed package, see
            :func:`rolefusion.data.pretrained_text.resolve_model_path`) whose own
            tokenizer to use instead; ``vocab_size`` and ``min_frequency`` then do not apply.
    """

    def __init__(
        self, vocab_size: int = 10000, min_frequency: int = 1, pretrained: str | None = None
    ) -> None:
        self.vocab_size = vocab_size
        self.min_frequency = min_frequency
        self.pretrained = pretrained

    def build(self, training_texts: Iterable[str]) -> Tokenizer:
        if self.pretrained is not None:
            return load_tokenizer(self.pretrained)
        return self._train(training_texts)

    def _train(self, training_texts: Iterable[str]) -> Tokenizer:
        """A lower-casing, NFKC-normalizing word-level tokenizer; ``[PAD]`` gets id 0."""
        tokenizer = Tokenizer(WordLevel(unk_token=UNK_TOKEN))
        tokenizer.normalizer = normalizers.Sequence([normalizers.NFKC(), normalizers.Lowercase()])
        tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
        trainer = WordLevelTrainer(
            vocab_size=self.vocab_size,
            min_frequency=self.min_frequency,
            special_tokens=[PAD_TOKEN, UNK_TOKEN],
        )
        tokenizer.train_from_iterator(training_texts, trainer=trainer)
        return tokenizer


def pad_id(tokenizer: Tokenizer) -> int:
    """The id used for padding: the tokenizer's own padding setting, else its ``[PAD]`` token."""
    if tokenizer.padding is not None:
        return tokenizer.padding["pad_id"]
    token_id = tokenizer.token_to_id(PAD_TOKEN)
    if token_id is None:
        raise ValueError(f"tokenizer has no padding setting and no {PAD_TOKEN} token")
    return token_id
