"""Inference: sessions, compiled backends and export, evaluation and its metrics, importing reference runs, canvas input."""
