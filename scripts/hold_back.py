"""Split an unaligned (CycleGAN) dataset into training and held-back images, as symbolic links.

The last ``N`` files (sorted by name) of ``trainA`` and ``trainB`` go to ``DST/testA`` and ``DST/testB``, the
rest to ``DST/trainA`` and ``DST/trainB``; the bundled horse2zebra model trained on such a split, so its card's
scores come from horses and zebras it never saw. Usage::

    python scripts/hold_back.py ../shared/data/horse2zebra DST [N=100]
"""

from __future__ import annotations

import sys
from pathlib import Path


def hold_back(src: Path, dst: Path, count: int = 100) -> dict[str, int]:
    """Link the split into ``dst``; returns the number of files per folder."""
    counts = {}
    for side in ("A", "B"):
        files = sorted(p for p in (src / f"train{side}").iterdir() if p.is_file())
        for folder, part in ((f"train{side}", files[:-count]), (f"test{side}", files[-count:])):
            (dst / folder).mkdir(parents=True, exist_ok=True)
            for path in part:
                if not (dst / folder / path.name).exists():
                    (dst / folder / path.name).symlink_to(path.resolve())
            counts[folder] = len(part)
    return counts


if __name__ == "__main__":
    if len(sys.argv) not in (3, 4):
        sys.exit(__doc__)
    print(hold_back(Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3]) if len(sys.argv) == 4 else 100))
