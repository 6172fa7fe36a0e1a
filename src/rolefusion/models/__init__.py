"""Models: encoders, fusions, the classifier they form and its LightningModule."""
