"""Gather the face emoji of ``../shared/data/emoji`` (both artwork styles) into one folder, as symbolic links.

The bundled sketch -> emoji model trains on faces only: a round head, eyes and a mouth are what anyone sketches
in a minute, and the face emoji share that layout, so a quick sketch lands near something the model knows. The
faces are the Unicode "Smileys & Emotion" face code points (plus the older U+263A/U+2639) without skin-tone or
gender variants. Usage (then ``ganvas dataset build edges DST pairs/ --size 128``)::

    python scripts/emoji_faces.py ../shared/data/emoji DST
"""

from __future__ import annotations

import sys
from pathlib import Path

FACE_RANGES = ((0x1F600, 0x1F637), (0x1F641, 0x1F644), (0x1F910, 0x1F915), (0x1F917, 0x1F917),
               (0x1F920, 0x1F925), (0x1F927, 0x1F92F), (0x1F970, 0x1F976), (0x1F978, 0x1F978),
               (0x1F97A, 0x1F97A), (0x1F9D0, 0x1F9D0), (0x1FAE0, 0x1FAE8), (0x2639, 0x263A))
STYLES = ("twitter", "google")


def is_face(name: str) -> bool:
    """``name`` (``<codepoints>.png``) is a single face code point, optionally with the emoji selector FE0F."""
    first, *rest = Path(name).stem.split("-")
    try:
        code = int(first, 16)
    except ValueError:
        return False
    return all(part == "fe0f" for part in rest) and any(lo <= code <= hi for lo, hi in FACE_RANGES)


def gather(emoji_root: Path, dst: Path) -> int:
    """Link every face emoji of each style into ``dst/<style>/``; returns how many."""
    count = 0
    for style in STYLES:
        (dst / style).mkdir(parents=True, exist_ok=True)
        for path in sorted((emoji_root / style).glob("*.png")):
            if is_face(path.name) and not (dst / style / path.name).exists():
                (dst / style / path.name).symlink_to(path.resolve())
                count += 1
    return count


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    print(f"linked {gather(Path(sys.argv[1]), Path(sys.argv[2]))} face emoji into {sys.argv[2]}")
