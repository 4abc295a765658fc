"""Offline training: manifest, synthetic walker, training and cross-validation."""
