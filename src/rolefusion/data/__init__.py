"""Data: manifests, the synthetic role-play scenes, tokenization and the DataModule."""
