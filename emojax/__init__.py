"""emojax: predicting the emotional impact of movies (valence / arousal) with JAX."""

__version__ = "0.1.0"
