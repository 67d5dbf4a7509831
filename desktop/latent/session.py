"""Latent (StyleGAN2) sessions as the app sees them: telling them apart, loading one, its card and name.

Everything model-related goes through ``engine.api`` (models load in a background thread), so this module
never imports torch.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine import api
from engine.api import LatentExplorer

if TYPE_CHECKING:
    from desktop.model_panel import ModelSource


def is_latent_session(session: Any) -> bool:
    """A latent explorer (a StyleGAN2 model), as its family opened it."""
    return isinstance(session, LatentExplorer)


def build_latent_session(source: ModelSource, device: str) -> LatentExplorer | None:
    """In a background thread: the session of ``source`` when it is a latent-family model, else None.

    Untrained sources are judged by their family, files by their header (read without loading weights).
    """
    if source.untrained:
        if api.family_info(source.family).input_kind != "latent":
            return None
        session = api.untrained_model(source.family, device=device, **source.config)
    else:
        try:
            card = api.model_card(source.path)
        except Exception:  # not a readable checkpoint: the usual loader reports it in its own words
            return None
        if card.input_kind != "latent":
            return None
        session = api.open_model(source.path, device)
    return session if isinstance(session, LatentExplorer) else None


def latent_card_lines(session: Any) -> list[str]:
    """The Model panel's card for a latent session."""
    meta = session.meta
    untrained = bool(meta.get("untrained"))
    family = str(meta.get("family") or "stylegan2")
    title = getattr(getattr(session, "card", None), "title", "")
    lines = [f"model:    {title}"] if title else []
    lines += [f"family:   {family}" + ("  (UNTRAINED: random weights)" if untrained else ""),
             "input:    latent (no drawing: edit in the Latent editor)",
             f"size:     {session.resolution}x{session.resolution}",
             f"steps:    {meta.get('step') or 0}",
             f"latent:   z {session.z_dim}, w {session.w_dim}, {session.num_ws} style layers"]
    if meta.get("dataset"):
        lines.append("data:     " + ", ".join(f"{k}={v}" for k, v in dict(meta["dataset"]).items()))
    return lines


def session_name(session: Any) -> str:
    """What the window calls a latent model: a bundled model's card title, else its run or file name."""
    title = getattr(getattr(session, "card", None), "title", "")
    if title:
        return str(title)
    path = getattr(session, "path", None)
    if path is None:
        return "untrained stylegan2"
    path = Path(path)
    return path.parent.name if path.stem == "latest" else path.stem
