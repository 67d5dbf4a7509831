"""The StyleGAN2 family: everything it owns. Importing the package registers it."""

from engine.families.stylegan2.family import StyleGAN2, StyleGAN2Config

__all__ = ["StyleGAN2", "StyleGAN2Config"]
