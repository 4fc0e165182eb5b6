"""Data: image pools, reproducible splits, batched augmentation and the Lightning DataModule."""
