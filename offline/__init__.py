"""Recordings through the live pipeline without sockets: capture's file sources feeding inference's stages.

- ``score``: ``dualgait score``'s engine (:func:`score.score_pair`: decode both files on background threads,
  pair, track, crop, window, score as fast as the machine allows, on a replay clock) and the decoded pair
  the walkway benchmark replays;
- ``clips``: the model-input windows of a recording (int8 calibration, training preprocessing, the demo
  model's check), through the same code as the live path, so there is no train/serve skew.

Above the serving packages (capture, inference), below benchmarks, training and the app.
"""
