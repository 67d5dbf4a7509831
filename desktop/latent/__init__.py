"""The latent editor for StyleGAN2 models: explore a generator's latent space with live sliders.

``model`` is the state the editor's features share (no widgets); each feature is one small widget observing
it: ``seed`` (seed and truncation), ``directions`` (edit directions), ``mixing`` (style mixing),
``interpolation`` (playback and export), ``projection`` (a photo's latent), ``files`` (latent files, PNG).
``panel`` only composes them; ``editor`` wires the panel to the app's state and output view. ``session``
tells latent sessions apart and loads them, ``render`` turns an edit state into an image (in the worker thread),
``controls`` holds the small widgets the sections share.
"""
