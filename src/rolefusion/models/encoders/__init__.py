"""Per-modality encoders: each maps one modality's raw batch entry to :class:`ModalityFeatures`."""
