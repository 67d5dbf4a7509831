"""Project files: exact round trip, atomic saves, and refusal of malformed or hostile archives."""

from __future__ import annotations

import io
import json
import os
import struct
import zipfile

import numpy as np
import pytest

from engine.core import project as project_mod
from engine.core.errors import ProjectError, StorageError
from engine.core.project import ModelReference, Project, load_project, save_project


def sample_project() -> Project:
    rng = np.random.default_rng(0)
    return Project(
        canvas=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        model=ModelReference("untrained", "pix2pix", {"ngf": 16, "ndf": 16}),
        canvas_mode="edges",
        palette="facades",
        style={"direction": "BtoA", "seed": 7},
        settings={"brush_size": 5, "tool": "brush"},
        output=rng.integers(0, 256, (24, 32, 3), dtype=np.uint8),
        latents={"w": rng.standard_normal((1, 8)).astype(np.float32)},
        style_image=rng.integers(0, 256, (8, 8, 3), dtype=np.uint8),
    )


def json_bytes(**overrides) -> bytes:
    meta = {"format": "ganvas-project", "version": 1, "model": None,
            "canvas": {"mode": "label", "palette": None}, "style": {}, "settings": {}}
    meta.update(overrides)
    return json.dumps(meta).encode()


def png_bytes() -> bytes:
    return project_mod._encode_png(np.zeros((4, 4, 3), np.uint8))


def write_zip(path, members: dict[str, bytes], compression=zipfile.ZIP_STORED):
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


def test_round_trip_keeps_pixels_and_fields(tmp_path):
    original = sample_project()
    loaded = load_project(save_project(tmp_path / "a.ganvas", original))
    assert np.array_equal(loaded.canvas, original.canvas)
    assert np.array_equal(loaded.output, original.output)
    assert np.array_equal(loaded.style_image, original.style_image)
    assert loaded.latents.keys() == {"w"} and np.array_equal(loaded.latents["w"], original.latents["w"])
    assert loaded.latents["w"].dtype == np.float32
    assert loaded.model == original.model
    assert (loaded.canvas_mode, loaded.palette, loaded.style, loaded.settings) == \
        ("edges", "facades", {"direction": "BtoA", "seed": 7}, {"brush_size": 5, "tool": "brush"})


def test_minimal_project_round_trips(tmp_path):
    canvas = np.full((3, 5, 3), 200, np.uint8)
    loaded = load_project(save_project(tmp_path / "m.ganvas", Project(canvas)))
    assert np.array_equal(loaded.canvas, canvas)
    assert loaded.model is None and loaded.output is None and loaded.latents == {} and loaded.style_image is None


def test_project_validates_its_fields():
    with pytest.raises(ProjectError, match="canvas must be a uint8"):
        Project(np.zeros((4, 4), np.float32))
    with pytest.raises(ProjectError, match="model kind"):
        ModelReference("web", "x")
    with pytest.raises(ProjectError, match="JSON"):
        Project(np.zeros((2, 2, 3), np.uint8), style={"f": object()})


def test_failed_save_leaves_the_old_file_loadable(tmp_path, monkeypatch):
    path = save_project(tmp_path / "keep.ganvas", sample_project())
    before = path.read_bytes()

    def broken_replace(*_args, **_kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(StorageError, match="keep.ganvas"):
        save_project(path, Project(np.zeros((2, 2, 3), np.uint8)))
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert load_project(path).canvas.shape == (24, 32, 3)
    assert [p.name for p in tmp_path.iterdir()] == ["keep.ganvas"]  # no temp file left behind


@pytest.mark.parametrize(("name", "message"), [
    ("../evil.png", "path traversal"),
    ("/etc/evil.png", "absolute path"),
    ("C:/evil.png", "absolute path"),
    ("evil.exe", "unexpected member"),
])
def test_unsafe_member_names_are_refused(tmp_path, name, message):
    path = write_zip(tmp_path / "bad.ganvas", {"project.json": json_bytes(), "canvas.png": png_bytes(), name: b"x"})
    with pytest.raises(ProjectError, match=message) as info:
        load_project(path)
    assert "bad.ganvas" in str(info.value)


def test_header_that_understates_the_size_is_refused(tmp_path):
    """A member whose directory entry claims 100 bytes but which inflates to 4 MB."""
    path = write_zip(tmp_path / "bomb.ganvas", {"project.json": json_bytes(), "canvas.png": png_bytes(),
                                                 "output.png": bytes(4 << 20)}, zipfile.ZIP_DEFLATED)
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("output.png")
    struct.pack_into("<I", raw, info.header_offset + 22, 100)  # local header: uncompressed size
    central = raw.find(b"PK\x01\x02")
    while raw[central + 46:central + 56] != b"output.png":
        central = raw.find(b"PK\x01\x02", central + 4)
    struct.pack_into("<I", raw, central + 24, 100)  # central directory: uncompressed size
    path.write_bytes(bytes(raw))
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("output.png").file_size == 100  # the lie is in place
    with pytest.raises(ProjectError, match="bomb.ganvas"):
        load_project(path)


def test_streaming_limit_stops_a_member_whatever_the_directory_says(tmp_path, monkeypatch):
    path = write_zip(tmp_path / "big.ganvas", {"project.json": json_bytes(), "canvas.png": png_bytes(),
                                                "output.png": bytes(3 << 20)}, zipfile.ZIP_DEFLATED)
    monkeypatch.setattr(project_mod, "MAX_MEMBER_BYTES", 1 << 20)
    with pytest.raises(ProjectError, match="'output.png' is too large"):  # the directory check
        load_project(path)
    real_infolist = zipfile.ZipFile.infolist

    def lying_infolist(self):
        infos = real_infolist(self)
        for info in infos:
            info.file_size = min(info.file_size, 10)
        return infos

    monkeypatch.setattr(zipfile.ZipFile, "infolist", lying_infolist)
    with pytest.raises(ProjectError, match="zip bomb|Bad CRC|corrupt"):  # the running count or the CRC
        load_project(path)


def test_too_many_members_are_refused(tmp_path):
    path = write_zip(tmp_path / "many.ganvas", {f"m{i}.png": b"" for i in range(40)})
    with pytest.raises(ProjectError, match=r"too many members \(40"):
        load_project(path)


def test_truncated_and_non_zip_files_are_refused(tmp_path):
    good = save_project(tmp_path / "good.ganvas", sample_project())
    cut = tmp_path / "cut.ganvas"
    cut.write_bytes(good.read_bytes()[: good.stat().st_size // 2])
    with pytest.raises(ProjectError, match="cut.ganvas.*(corrupt|truncated)"):
        load_project(cut)
    junk = tmp_path / "junk.ganvas"
    junk.write_bytes(b"hello")
    with pytest.raises(ProjectError, match="junk.ganvas"):
        load_project(junk)
    with pytest.raises(ProjectError, match="not found"):
        load_project(tmp_path / "absent.ganvas")


def test_missing_json_canvas_and_bad_images_are_refused(tmp_path):
    with pytest.raises(ProjectError, match="project.json is missing"):
        load_project(write_zip(tmp_path / "a.ganvas", {"canvas.png": png_bytes()}))
    with pytest.raises(ProjectError, match="no canvas.png"):
        load_project(write_zip(tmp_path / "b.ganvas", {"project.json": json_bytes()}))
    with pytest.raises(ProjectError, match="canvas.png is not a PNG"):
        load_project(write_zip(tmp_path / "c.ganvas", {"project.json": json_bytes(), "canvas.png": b"GIF89a"}))
    huge = bytearray(png_bytes())
    struct.pack_into(">II", huge, 16, 100_000, 100_000)  # IHDR claims 10 gigapixels
    with pytest.raises(ProjectError, match="100000x100000 pixels"):
        load_project(write_zip(tmp_path / "d.ganvas", {"project.json": json_bytes(), "canvas.png": bytes(huge)}))


def test_newer_and_foreign_formats_are_refused(tmp_path):
    newer = write_zip(tmp_path / "new.ganvas", {"project.json": json_bytes(version=99), "canvas.png": png_bytes()})
    with pytest.raises(ProjectError, match="new.ganvas: project format version 99 is newer"):
        load_project(newer)
    foreign = write_zip(tmp_path / "f.ganvas", {"project.json": json_bytes(format="other"),
                                                 "canvas.png": png_bytes()})
    with pytest.raises(ProjectError, match="does not describe a Ganvas project"):
        load_project(foreign)


def test_latents_are_read_without_pickles(tmp_path):
    buffer = io.BytesIO()
    np.save(buffer, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    npz = io.BytesIO()
    with zipfile.ZipFile(npz, "w") as archive:
        archive.writestr("w.npy", buffer.getvalue())
    path = write_zip(tmp_path / "p.ganvas", {"project.json": json_bytes(), "canvas.png": png_bytes(),
                                              "latent.npz": npz.getvalue()})
    with pytest.raises(ProjectError, match="latent.npz array 'w' is unreadable"):
        load_project(path)
