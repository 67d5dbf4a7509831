"""The SPADE family: everything it owns. Importing the package registers it."""

from engine.families.spade.family import SPADE, SPADEConfig

__all__ = ["SPADE", "SPADEConfig"]
