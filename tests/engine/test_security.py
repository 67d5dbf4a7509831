"""Hostile files (issue 20): a pickle that would write a marker file never runs, whichever command or loader is
handed it, under whichever name; image headers declaring huge sizes are refused before any decoding.

Project zips (path traversal, zip bombs, oversized or too many members) are covered in test_project.py.
"""

from __future__ import annotations

import pickle
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from engine.cli.main import main as cli
from engine.core.errors import GanvasError, ImageError
from engine.core.imageio import MAX_PIXELS, read_image, write_image

pytestmark = pytest.mark.usefixtures("one_torch_thread")


class WritesMarker:
    """Unpickling this calls ``Path.write_text(marker, "pwned")``: the proof that code from a file ran."""

    marker = ""

    def __reduce__(self):
        return (Path.write_text, (Path(self.marker), "pwned"))


@pytest.fixture()
def evil(tmp_path) -> tuple[bytes, Path]:
    """The bytes of a ``torch.save``-style pickle holding a :class:`WritesMarker`, and the marker's path."""
    marker = tmp_path / "marker"
    WritesMarker.marker = str(marker)
    return pickle.dumps({"state_dict": {"w": WritesMarker()}}, protocol=2), marker


SUFFIXES = (".pth", ".pt", ".ckpt", ".safetensors", ".npz", ".ganvas", ".json", ".png")


def test_malicious_pickle_never_runs_in_any_command(tmp_path, evil, capsys):
    data, marker = evil
    files = {suffix: tmp_path / f"evil{suffix}" for suffix in SUFFIXES}
    for path in files.values():
        path.write_bytes(data)
    run = tmp_path / "run"
    run.mkdir()
    (run / "latest.safetensors").write_bytes(data)
    (run / "log.jsonl").write_bytes(data)
    image = tmp_path / "in.png"
    write_image(image, np.zeros((8, 8, 3), np.uint8))
    out = str(tmp_path / "out")
    commands = [["import-pth", str(files[s]), "--out", str(tmp_path / "x.safetensors"), "pix2pix"]
                for s in (".pth", ".pt", ".ckpt")]
    for checkpoint in (files[".pth"], files[".safetensors"], run):
        commands += [["info", str(checkpoint)],
                     ["translate", "--checkpoint", str(checkpoint), str(image), "--out", out],
                     ["eval", "--checkpoint", str(checkpoint), "--data", str(tmp_path)],
                     ["generate", "--checkpoint", str(checkpoint), "--out", out]]
    commands += [["train", "--resume", str(run), "--no-progress"], ["history", str(run)],
                 ["translate", "--checkpoint", str(run), str(files[".png"]), "--out", out]]
    for command in commands:
        code = cli(command)
        assert code != 0 or command[0] == "history", command
        assert not marker.exists(), f"code ran: {command}"
    assert "Traceback" not in capsys.readouterr().err


def test_malicious_pickle_never_runs_in_any_loader(tmp_path, evil):
    """What the app's open dialogs call: checkpoints, .pth import, latents, directions, projects, palettes."""
    from engine.core.checkpoint import load_checkpoint, load_pth_state_dict, read_metadata
    from engine.core.project import load_project
    from engine.data.palette import Palette
    from engine.families.stylegan2.latent import LatentSession, load_directions, load_latent
    from engine.infer.inference import InferenceSession

    data, marker = evil
    loaders = [load_checkpoint, read_metadata, load_pth_state_dict, load_latent, load_directions, load_project,
               Palette.load, read_image, lambda p: InferenceSession.from_checkpoint(p, device="cpu"),
               lambda p: LatentSession.from_checkpoint(p, device="cpu")]
    for suffix in SUFFIXES:
        path = tmp_path / f"evil{suffix}"
        path.write_bytes(data)
        for load in loaders:
            try:
                load(path)
            except GanvasError:
                pass
            assert not marker.exists(), (suffix, load)
    with pytest.raises(GanvasError, match="refused"):
        load_pth_state_dict(tmp_path / "evil.pth")


# --- images whose headers declare huge sizes ------------------------------------------------------------------------
def _png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + \
        chunk(b"IEND", b"")


def _jpeg(width: int, height: int) -> bytes:
    sof = b"\xff\xc0" + struct.pack(">HBHHB", 11, 8, height, width, 1) + b"\x01\x11\x00"
    return b"\xff\xd8" + b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\0" + bytes(9) + sof + b"\xff\xd9"


def _bmp(width: int, height: int) -> bytes:
    return b"BM" + struct.pack("<IHHI", 0, 0, 0, 54) + struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0,
                                                                    0, 0, 0, 0) + bytes(16)


def _webp(width: int, height: int) -> bytes:
    body = b"VP8X" + struct.pack("<I", 10) + bytes(4) + (width - 1).to_bytes(3, "little") + \
        (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"WEBP" + body


def _tiff(width: int, height: int) -> bytes:
    entries = [(256, 4, 1, width), (257, 4, 1, height), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
               (273, 4, 1, 8), (277, 3, 1, 1), (278, 4, 1, height), (279, 4, 1, 16)]
    ifd = struct.pack("<H", len(entries)) + b"".join(
        struct.pack("<HHI", tag, kind, count) + (struct.pack("<HH", value, 0) if kind == 3 else
                                                 struct.pack("<I", value)) for tag, kind, count, value in entries)
    return b"II*\0" + struct.pack("<I", 24) + bytes(16) + ifd + struct.pack("<I", 0)


@pytest.mark.parametrize("make, suffix", [(_png, ".png"), (_jpeg, ".jpg"), (_bmp, ".bmp"), (_webp, ".webp"),
                                          (_tiff, ".tif")])
def test_huge_declared_sizes_are_refused_before_decoding(make, suffix, tmp_path, monkeypatch):
    import cv2

    side = 60_000  # 3.6 gigapixels claimed by a file of a few hundred bytes
    assert side * side > MAX_PIXELS
    path = tmp_path / f"bomb{suffix}"
    path.write_bytes(make(side, side))
    decoded = []
    monkeypatch.setattr(cv2, "imdecode", lambda *a: decoded.append(a) or None)
    with pytest.raises(ImageError, match=f"declares {side}x{side} pixels"):
        read_image(path)
    assert not decoded, "the decoder was called"


def test_png_whose_chunk_claims_more_than_the_file_is_refused_at_once(tmp_path):
    """The fuzzer's find: a 1.5 KB PNG whose chunk length says 1.3 GB kept OpenCV busy for 30 s."""
    data = bytearray(_png(16, 16))
    data[33:37] = struct.pack(">I", 1_375_731_712)  # the IDAT length
    (tmp_path / "lying.png").write_bytes(bytes(data))
    with pytest.raises(ImageError, match="claims 1375731712 bytes"):  # before any decoder sees it
        read_image(tmp_path / "lying.png")


def test_content_that_is_no_accepted_format_is_refused(tmp_path):
    (tmp_path / "x.png").write_bytes(b"P6\n4 4\n255\n" + bytes(48))  # a PPM, which OpenCV would decode
    with pytest.raises(ImageError, match="not a JPEG, PNG, BMP, TIFF or WebP"):
        read_image(tmp_path / "x.png")
