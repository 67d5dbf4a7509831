"""Image reading: conversion rule, EXIF orientation and errors naming the file."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from engine.core import imageio
from engine.core.errors import ImageError
from engine.core.imageio import read_image, write_image


def test_round_trip_rgb_png(tmp_path):
    image = np.random.default_rng(0).integers(0, 256, (9, 7, 3), dtype=np.uint8)
    read = read_image(write_image(tmp_path / "x.png", image))
    assert read.dtype == np.uint8 and np.array_equal(read, image)


@pytest.mark.parametrize("suffix", [".jpg", ".bmp", ".tif", ".webp"])
def test_formats_decode_to_rgb(tmp_path, suffix):
    image = np.zeros((16, 16, 3), np.uint8)
    image[..., 0] = 200  # red in RGB
    read = read_image(write_image(tmp_path / f"x{suffix}", image))
    assert read.shape == (16, 16, 3)
    assert abs(int(read[8, 8, 0]) - 200) < 8 and read[8, 8, 2] < 8


def test_grey_alpha_16bit_and_rgba_conversions(tmp_path):
    grey = np.full((4, 4), 100, np.uint8)
    cv2.imwrite(str(tmp_path / "g.png"), grey)
    assert np.all(read_image(tmp_path / "g.png") == 100)
    deep = np.full((4, 4, 3), 40000, np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), deep)
    assert np.all(read_image(tmp_path / "d.png") == 40000 >> 8)
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[..., 3] = 0  # fully transparent left half ...
    bgra[:, 2:, 3] = 255  # ... opaque right half
    cv2.imwrite(str(tmp_path / "a.png"), bgra)
    white = read_image(tmp_path / "a.png")
    assert tuple(white[0, 0]) == (255, 255, 255) and tuple(white[0, 3]) == (255, 0, 0)
    black = read_image(tmp_path / "a.png", background=(0, 0, 0))
    assert tuple(black[0, 0]) == (0, 0, 0)
    grey_alpha = np.dstack([np.full((4, 4), 50, np.uint8), np.full((4, 4), 0, np.uint8)])
    assert np.all(imageio.to_rgb8(grey_alpha, (10, 20, 30)) == np.array([10, 20, 30]))


def test_exif_orientation_is_applied(tmp_path):
    image = np.zeros((10, 20, 3), np.uint8)  # landscape
    ok, encoded = cv2.imencode(".jpg", image)
    data = bytearray(encoded.tobytes())
    # Insert an APP1 EXIF segment with Orientation = 6 (rotate 90 degrees clockwise) after SOI.
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01\x00\x06\x00\x00" + \
        b"\x00\x00\x00\x00"
    payload = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + (len(payload) + 2).to_bytes(2, "big") + payload
    data[2:2] = segment
    (tmp_path / "r.jpg").write_bytes(bytes(data))
    assert read_image(tmp_path / "r.jpg").shape[:2] == (20, 10)


def test_bad_files_raise_image_error_naming_the_file(tmp_path):
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(ImageError, match=r"empty\.png: file is empty"):
        read_image(tmp_path / "empty.png")
    (tmp_path / "junk.jpg").write_bytes(b"not an image at all")
    with pytest.raises(ImageError, match=r"junk\.jpg"):
        read_image(tmp_path / "junk.jpg")
    good = write_image(tmp_path / "t.jpg", np.full((64, 64, 3), 90, np.uint8)).read_bytes()
    (tmp_path / "trunc.jpg").write_bytes(good[: len(good) // 2])
    with pytest.raises(ImageError, match=r"trunc\.jpg: image data is truncated"):
        read_image(tmp_path / "trunc.jpg")
    png = write_image(tmp_path / "t.png", np.full((64, 64, 3), 90, np.uint8)).read_bytes()
    (tmp_path / "trunc.png").write_bytes(png[:-20])
    with pytest.raises(ImageError, match="truncated"):
        read_image(tmp_path / "trunc.png")
    with pytest.raises(ImageError, match="not found"):
        read_image(tmp_path / "nope.png")


def test_decompression_bomb_is_refused(tmp_path, monkeypatch):
    write_image(tmp_path / "big.png", np.zeros((256, 256, 3), np.uint8))
    monkeypatch.setattr(imageio, "MAX_PIXELS", 256 * 256 - 1)
    with pytest.raises(ImageError, match="over the limit"):
        read_image(tmp_path / "big.png")


def test_cmyk_jpeg_and_palette_png_become_rgb(tmp_path):
    from PIL import Image

    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "cmyk.jpg")  # pure red in CMYK
    rgb = read_image(tmp_path / "cmyk.jpg")
    assert rgb.shape == (8, 8, 3) and rgb[4, 4, 0] > 200 and rgb[4, 4, 1] < 60 and rgb[4, 4, 2] < 60
    palette_image = Image.new("P", (8, 8))
    palette_image.putpalette([0, 0, 0, 10, 200, 30] + [0] * 762)
    palette_image.paste(1, (0, 0, 8, 8))
    palette_image.save(tmp_path / "pal.png")
    assert tuple(read_image(tmp_path / "pal.png")[0, 0]) == (10, 200, 30)
