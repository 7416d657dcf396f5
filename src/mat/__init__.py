"""Reference reproduction of Modular Adaptive Training (MAT), NeurIPS 2023."""

__version__ = "0.1.0"
