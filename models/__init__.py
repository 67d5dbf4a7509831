"""Networks and loss functions. Imports torch and kornia only, nothing else of Ganvas."""
