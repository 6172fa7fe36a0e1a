"""The modalities rolefusion knows, in one torch-free place (the configuration reads it)."""

MODALITY_ORDER: tuple[str, ...] = ("image", "text", "audio")
"""Fixed order in which modalities are concatenated wherever order matters."""
