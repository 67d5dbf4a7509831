"""The CycleGAN family: everything it owns. Importing the package registers it."""

from engine.families.cyclegan.family import CycleGAN, CycleGANConfig

__all__ = ["CycleGAN", "CycleGANConfig"]
