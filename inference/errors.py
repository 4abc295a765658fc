"""Errors of the inference side that a user can cause (reported in one line by the CLI)."""


class DetectorError(RuntimeError):
    """The detector cannot be loaded (missing or unreadable weights)."""


class ModelLoadError(RuntimeError):
    """Model weights are missing, unreadable or do not fit the configured model."""


class ModelViewsError(ModelLoadError):
    """The model's views are not the walkway's cameras (a late-fusion model with one camera, or the reverse)."""

    def __init__(self, model_views: tuple[str, ...] | list[str], views: tuple[str, ...] | list[str]) -> None:
        from inference.variants import default_variant

        self.model_views, self.views = tuple(model_views), tuple(views)
        if len(self.views) == 1:
            fix = (f"a single-view model is needed: a {default_variant(self.views)} checkpoint "
                   f"(inference.model.weights), or weights null for an untrained one")
        else:
            fix = "a fusion model (late, early, slow, gated) is needed, or configure the one camera only"
        super().__init__(f"the model takes the {' + '.join(self.model_views)} view(s) but the cameras are "
                         f"{' + '.join(self.views)}: {fix}")
