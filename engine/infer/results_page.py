"""A static results page: input | output | target rows with the metrics above, like the reference's test.py.

``DIR/index.html`` plus ``DIR/images/NNNN_{input,output,target}.png``; no scripts, no external files, so the
folder can be zipped and shared.
"""

from __future__ import annotations

import html
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.core.errors import StorageError
from engine.core.imageio import write_image
from engine.data.augment import from_minus_one_one
from engine.infer.eval_batch import EvalBatch

COLUMNS = ("input", "output", "target")
_STYLE = """body{font-family:system-ui,sans-serif;margin:24px;color:#222;background:#fafafa}
h1{font-size:20px;margin:0 0 4px}p.sub{color:#666;margin:0 0 16px}
table.m{border-collapse:collapse;margin-bottom:20px}table.m td{padding:3px 12px;border-bottom:1px solid #ddd}
table.m td:first-child{color:#555}table.r{border-collapse:collapse}
table.r th{font-weight:600;padding:4px 8px;text-align:center;color:#444}table.r td{padding:4px 8px;text-align:center}
table.r td.g{color:#666;font-size:12px}img{width:192px;image-rendering:auto;border:1px solid #ccc;background:#fff}"""


class ResultsPage:
    """Collects up to ``max_rows`` rows of images as they are evaluated, then writes the page.

    Args:
        folder: where ``index.html`` and ``images/`` go (created).
        max_rows: rows kept (the first ones).
    """

    def __init__(self, folder: str | Path, max_rows: int = 50) -> None:
        self.folder = Path(folder)
        self.max_rows = max_rows
        self.rows: list[tuple[str, dict[str, str]]] = []
        try:
            (self.folder / "images").mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StorageError(f"cannot create the results folder ({exc.strerror})", path=self.folder) from exc

    def add(self, batch: EvalBatch) -> None:
        """Keep the batch's rows (images written now) while there is room."""
        columns = {"input": batch.inputs, "output": batch.outputs, "target": batch.targets}
        count = max(len(images) for images in columns.values() if images is not None)
        for index in range(count):
            if len(self.rows) >= self.max_rows:
                return
            number = len(self.rows)
            cells = {}
            for name, images in columns.items():
                if images is None or index >= len(images) or images.shape[1] != 3:
                    continue
                file = f"images/{number:04d}_{name}.png"
                write_image(self.folder / file, from_minus_one_one(images[index]).permute(1, 2, 0).cpu().numpy())
                cells[name] = file
            self.rows.append((batch.group, cells))

    def write(self, metrics: dict[str, Any], title: str | None = None) -> Path:
        """Write ``index.html`` with ``metrics`` (a table) and the rows; returns its path."""
        title = title or f"Ganvas results: {metrics.get('family', '')} on {metrics.get('split', '')}"
        metric_rows = "".join(f"<tr><td>{html.escape(str(k))}</td><td>{html.escape(_format(v))}</td></tr>"
                              for k, v in metrics.items() if k != "html")
        groups = any(group for group, _ in self.rows)
        header = ("<th></th>" if groups else "") + "".join(f"<th>{name}</th>" for name in COLUMNS)
        body = []
        for group, cells in self.rows:
            row = f"<td class=g>{html.escape(group)}</td>" if groups else ""
            row += "".join(f'<td><img src="{cells[name]}" alt="{name}"></td>' if name in cells else "<td></td>"
                           for name in COLUMNS)
            body.append(f"<tr>{row}</tr>")
        stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        page = (f"<!doctype html><html><head><meta charset=utf-8><title>{html.escape(title)}</title>"
                f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
                f"<p class=sub>written by ganvas eval, {stamp}; {len(self.rows)} rows</p>"
                f"<table class=m>{metric_rows}</table><table class=r><tr>{header}</tr>{''.join(body)}</table>"
                "</body></html>\n")
        path = self.folder / "index.html"
        try:
            path.write_text(page, encoding="utf-8")
        except OSError as exc:
            raise StorageError(f"cannot write the results page ({exc.strerror})", path=path) from exc
        return path


def _format(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.1f}"
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    return str(value)
