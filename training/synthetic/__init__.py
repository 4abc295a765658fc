"""Labelled synthetic data sets for training: walkers of ``capture.synthetic`` rendered to videos + a manifest.

``generate_dataset`` renders subjects (drawn with posture traits, or given) into front/side videos and a
manifest of the training format; ``dualgait simulate`` is its command (``cli``); ``detect_rate`` surveys
how often the live YOLO tracker finds the simulated walker. Synthetic data: a model trained on it says
nothing about real patients.
"""

from training.synthetic.cli import add_simulate_args, run_simulate
from training.synthetic.dataset import generate_dataset

__all__ = ["add_simulate_args", "generate_dataset", "run_simulate"]
