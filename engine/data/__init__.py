"""Datasets: pairs, label maps and palettes, augmentation, dataset checks and builders."""
