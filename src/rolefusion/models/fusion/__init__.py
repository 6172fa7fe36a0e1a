"""Fusions: interchangeable modules from ``dict[str, ModalityFeatures]`` to one ``[B, D_out]``."""
