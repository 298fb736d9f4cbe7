"""facemetric: train, evaluate and deploy face verification and identification models."""

__version__ = "0.1.0"
