"""rolefusion."""
