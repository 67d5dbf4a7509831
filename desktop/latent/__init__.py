"""The latent editor for StyleGAN2 models: explore a generator's latent space with live sliders.

``session`` tells latent sessions apart and loads them; ``render`` turns what the controls say into an image
(in the worker thread); ``controls`` holds the small shared widgets; ``panel`` is the dock's content;
``editor`` wires it to the app's state and output view.
"""
