"""Detection models (torchvision.models.detection) on NumPy arrays."""
