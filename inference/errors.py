"""Errors of the inference side that a user can cause (reported in one line by the CLI)."""


class DetectorError(RuntimeError):
    """The detector cannot be loaded (missing or unreadable weights)."""


class ModelLoadError(RuntimeError):
    """Model weights are missing, unreadable or do not fit the configured model."""
