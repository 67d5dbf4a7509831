"""Latent (StyleGAN2) sessions as the app sees them: telling them apart, loading one, its card and name.

Everything model-related goes through ``engine.families.stylegan2.latent`` (imported in the thread that
loads the model), so this module never imports torch.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from desktop.model_panel import ModelSource


def is_latent_session(session: Any) -> bool:
    """A ``engine.families.stylegan2.latent.LatentSession`` (seen by its API, without importing the engine)."""
    return session is not None and all(hasattr(session, name) for name in ("synthesize", "w_from_seed", "num_ws"))


def build_latent_session(source: ModelSource, device: str) -> Any | None:
    """In a background thread: a ``LatentSession`` when ``source`` is a latent-family model, else None.

    Untrained sources are judged by their family, files by their header (read without loading weights).
    """
    if source.untrained:
        family = importlib.import_module("engine.core.registry").get_family(source.family)
        if family.input_kind != "latent":
            return None
        return importlib.import_module("engine.families.stylegan2.latent").LatentSession.untrained(device=device, **source.config)
    try:
        card = importlib.import_module("engine.infer.inference").model_card(source.path)
    except Exception:  # not a readable checkpoint: the usual loader reports it in its own words
        return None
    if card.input_kind != "latent":
        return None
    return importlib.import_module("engine.families.stylegan2.latent").LatentSession.from_checkpoint(source.path, device)


def latent_card_lines(session: Any) -> list[str]:
    """The Model panel's card for a latent session."""
    meta = session.meta
    untrained = bool(meta.get("untrained"))
    family = str(meta.get("family") or "stylegan2")
    lines = [f"family:   {family}" + ("  (UNTRAINED: random weights)" if untrained else ""),
             "input:    latent (no drawing: edit in the Latent editor)",
             f"size:     {session.resolution}x{session.resolution}",
             f"steps:    {meta.get('step') or 0}",
             f"latent:   z {session.z_dim}, w {session.w_dim}, {session.num_ws} style layers"]
    if meta.get("dataset"):
        lines.append("data:     " + ", ".join(f"{k}={v}" for k, v in dict(meta["dataset"]).items()))
    return lines


def session_name(session: Any) -> str:
    path = getattr(session, "path", None)
    if path is None:
        return "untrained stylegan2"
    path = Path(path)
    return path.parent.name if path.stem == "latest" else path.stem
