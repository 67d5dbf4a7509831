"""The Pix2Pix family: everything it owns. Importing the package registers it."""

from engine.families.pix2pix.family import Pix2Pix, Pix2PixConfig

__all__ = ["Pix2Pix", "Pix2PixConfig"]
