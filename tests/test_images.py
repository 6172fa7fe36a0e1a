"""Specifications of image decoding: geometry, colour modes, refusals and the cache."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile, JpegImagePlugin

from rolefusion.data import images
from rolefusion.data.images import DecodedImageCache, ImagePolicy, load_image
from rolefusion.data.rejections import Rejected

RED, GREEN, BLUE, WHITE = (255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)


def save(path: Path, image: Image.Image, **params: object) -> Path:
    image.save(path, **params)
    return path


def halves(mode: str, left: object, right: object, size: tuple[int, int] = (16, 16)) -> Image.Image:
    """An image whose left half is ``left`` and right half ``right``."""
    image = Image.new(mode, size, left)
    image.paste(right, (size[0] // 2, 0, *size))
    return image


def colour(pixels: torch.Tensor, row: int, col: int) -> tuple[int, ...]:
    return tuple(pixels[:, row, col].tolist())


def rejection(path: Path, policy: ImagePolicy) -> Rejected:
    with pytest.raises(Rejected) as caught:
        load_image(path, policy)
    assert caught.value.field == "image"
    return caught.value


# --- geometry ------------------------------------------------------------------------------------


def test_pad_keeps_the_whole_image_centred_between_bands_of_padding(tmp_path: Path) -> None:
    path = save(tmp_path / "wide.png", Image.new("RGB", (40, 20), RED))
    pixels, original = load_image(path, ImagePolicy(size=20, pad_value=7))
    assert original == (40, 20)
    assert pixels.shape == (3, 20, 20) and pixels.dtype == torch.uint8
    assert pixels.is_contiguous()
    assert (pixels[:, :5] == 7).all() and (pixels[:, 15:] == 7).all()
    assert (pixels[:, 5:15] == torch.tensor(RED, dtype=torch.uint8)[:, None, None]).all()

    tall = save(tmp_path / "tall.png", Image.new("RGB", (20, 40), RED))
    assert torch.equal(load_image(tall, ImagePolicy(size=20, pad_value=7))[0], pixels.mT)


def test_crop_fills_the_square_with_the_centre(tmp_path: Path) -> None:
    image = halves("RGB", GREEN, GREEN, (40, 20))
    image.paste(RED, (10, 0, 30, 20))  # the centre square is red, the ends green
    pixels, original = load_image(save(tmp_path / "a.png", image), ImagePolicy(20, "crop"))
    assert original == (40, 20)
    assert (pixels == torch.tensor(RED, dtype=torch.uint8)[:, None, None]).all()


def test_stretch_keeps_everything_and_pads_nothing(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", halves("RGB", RED, BLUE, (40, 20)))
    pixels, _ = load_image(path, ImagePolicy(10, "stretch", pad_value=7))
    assert pixels.shape == (3, 10, 10)
    assert all(colour(pixels, row, 0) == RED and colour(pixels, row, 9) == BLUE for row in (0, 9))


def test_exif_orientation_is_applied(tmp_path: Path) -> None:
    image = Image.new("RGB", (40, 20), BLUE)
    image.paste(RED, (0, 0, 20, 10))  # the top-left quarter as stored
    exif = Image.Exif()
    exif[0x0112] = 6  # Orientation: turn 90 degrees clockwise to display
    path = save(tmp_path / "phone.jpg", image, exif=exif, quality=95)
    pixels, original = load_image(path, ImagePolicy(20, "stretch"))
    assert original == (20, 40)
    top_right, bottom_left = colour(pixels, 4, 15), colour(pixels, 15, 4)
    assert top_right[0] > 200 and top_right[2] < 50
    assert bottom_left[0] < 50 and bottom_left[2] > 200


@pytest.mark.parametrize(("resize", "size"), [("pad", 150), ("crop", 90)])
def test_big_jpegs_decode_at_a_reduced_scale_that_still_covers_the_output(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, resize: str, size: int
) -> None:
    drafted: list[tuple[int, int]] = []
    draft = JpegImagePlugin.JpegImageFile.draft

    def spy(self: JpegImagePlugin.JpegImageFile, *args: object) -> object:
        result = draft(self, *args)
        drafted.append(self.size)
        return result

    monkeypatch.setattr(JpegImagePlugin.JpegImageFile, "draft", spy)
    path = save(tmp_path / "big.jpg", Image.new("RGB", (800, 400), RED), quality=95)
    pixels, original = load_image(path, ImagePolicy(size, resize, pad_value=7))
    assert original == (800, 400)  # the file's size, not the reduced one
    [(width, height)] = drafted
    assert width < 800 and (max if resize == "pad" else min)(width, height) >= size
    centre = colour(pixels, size // 2, size // 2)
    assert centre[0] > 245 and max(centre[1:]) < 10
    assert (pixels[:, 0] == 7).all() == (resize == "pad")


# --- colour modes --------------------------------------------------------------------------------


def palette(transparent: bool) -> tuple[Image.Image, dict[str, object]]:
    image = halves("P", 0, 1)
    image.putpalette([10, 20, 30, 200, 100, 50])
    return image, {"transparency": 0} if transparent else {}


def grey16(values: tuple[int, int], dtype: type) -> Image.Image:
    return Image.fromarray(np.repeat(np.array(values, dtype=dtype), 8)[None].repeat(16, axis=0))


MODES: dict[str, tuple[Callable[[], tuple[Image.Image, dict]], str, tuple, tuple]] = {
    "L": (lambda: (halves("L", 0, 128), {}), "png", (0, 0, 0), (128,) * 3),
    "LA": (lambda: (halves("LA", (128, 0), (128, 255)), {}), "png", WHITE, (128,) * 3),
    "RGBA": (lambda: (halves("RGBA", (0, 0, 0, 0), (*RED, 255)), {}), "png", WHITE, RED),
    "P": (lambda: palette(False), "png", (10, 20, 30), (200, 100, 50)),
    "P+transparency": (lambda: palette(True), "png", WHITE, (200, 100, 50)),
    "1": (lambda: (halves("1", 0, 1), {}), "png", (0, 0, 0), WHITE),
    # 200 of 65535 is nearly black: converting would clip it to white instead.
    "I;16": (lambda: (grey16((65535, 200), np.uint16), {}), "png", WHITE, (1,) * 3),
    "I": (lambda: (grey16((65535, 32896), np.int32), {}), "tiff", WHITE, (128,) * 3),
    "F 0-1": (lambda: (halves("F", 0.25, 1.0), {}), "tiff", (64,) * 3, WHITE),
    "F 0-255": (lambda: (halves("F", 2.0, 300.0), {}), "tiff", (2,) * 3, WHITE),
    "CMYK": (lambda: (halves("CMYK", (0, 255, 255, 0), (0, 0, 0, 255)), {}), "tiff", RED, (0,) * 3),
}


@pytest.mark.parametrize("name", MODES)
def test_every_mode_becomes_rgb_as_it_is_seen(tmp_path: Path, name: str) -> None:
    build, suffix, left, right = MODES[name]
    image, params = build()
    path = save(tmp_path / f"image.{suffix}", image, **params)
    assert Image.open(path).mode == image.mode  # the file really holds that mode
    pixels, original = load_image(path, ImagePolicy(16))
    assert original == (16, 16)
    assert pixels.shape == (3, 16, 16) and pixels.dtype == torch.uint8
    assert colour(pixels, 3, 3) == left
    assert colour(pixels, 12, 12) == right


# --- refusals ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("size", "detail"), [((1, 1), "1x1"), ((100, 4), "100x4")])
def test_tiny_images_are_refused(tmp_path: Path, size: tuple[int, int], detail: str) -> None:
    path = save(tmp_path / "dot.png", Image.new("RGB", size))
    refused = rejection(path, ImagePolicy(16))
    assert refused.reason == "image too small"
    assert refused.detail == f"{detail} pixels, data.images.min_side=8"


def test_huge_images_are_refused_from_the_header_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "huge.png", Image.new("1", (8000, 8000)))  # compresses to a few KiB

    def no_decoding(self: ImageFile.ImageFile) -> None:
        raise AssertionError("decoded an image that its header already refuses")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    refused = rejection(path, ImagePolicy(16))
    assert refused.reason == "image too large"
    assert refused.detail == "8000x8000 pixels, data.images.max_pixels=40000000"


def test_corrupt_files_are_unreadable(tmp_path: Path) -> None:
    noise = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    whole = save(tmp_path / "whole.png", Image.fromarray(noise)).read_bytes()
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(whole[: len(whole) // 2])
    garbage = tmp_path / "garbage.jpg"
    garbage.write_bytes(np.random.default_rng(1).bytes(1000))
    for path in (truncated, garbage):
        refused = rejection(path, ImagePolicy(16))
        assert refused.reason == "unreadable image" and refused.detail


def test_missing_files_are_not_found(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.png"
    refused = rejection(path, ImagePolicy(16))
    assert (refused.reason, refused.detail) == ("image file not found", str(path))
    with pytest.raises(Rejected, match="image file not found"):
        DecodedImageCache().load(path, ImagePolicy(16))


@pytest.mark.parametrize(
    ("fields", "key"),
    [
        ({"resize": "zoom"}, "data.images.resize"),
        ({"size": 0}, "data.images.size"),
        ({"pad_value": 256}, "data.images.pad_value"),
        ({"min_side": 0}, "data.images.min_side"),
        ({"max_pixels": 1.5}, "data.images.max_pixels"),
    ],
)
def test_bad_policies_name_their_config_key(fields: dict, key: str) -> None:
    with pytest.raises(ValueError, match=key):
        ImagePolicy(**{"size": 16, **fields})


# --- the cache -----------------------------------------------------------------------------------


def test_a_second_load_is_a_hit_and_a_copy(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (16, 8), RED))
    cache = DecodedImageCache()
    first, original = cache.load(path, ImagePolicy(16))
    first.zero_()  # the caller's copy: the cache keeps its own
    second, again = cache.load(path, ImagePolicy(16))
    assert (cache.hits, cache.misses) == (1, 1)
    assert torch.equal(second, load_image(path, ImagePolicy(16))[0])
    assert original == again == (16, 8)


def test_edited_files_and_other_policies_miss(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (16, 16), RED))
    cache = DecodedImageCache()
    cache.load(path, ImagePolicy(16))
    save(path, Image.new("RGB", (16, 16), BLUE))
    assert colour(cache.load(path, ImagePolicy(16))[0], 0, 0) == BLUE
    assert cache.load(path, ImagePolicy(16, pad_value=1))[0].shape == (3, 16, 16)
    assert (cache.hits, cache.misses) == (0, 3)


def test_memory_evicts_the_least_recently_used(tmp_path: Path) -> None:
    a, b, c = (save(tmp_path / f"{n}.png", Image.new("RGB", (8, 8), n)) for n in (RED, GREEN, BLUE))
    cache = DecodedImageCache(max_bytes=2 * 3 * 8 * 8)  # room for two
    for path in (a, b, a, c):  # c evicts b, used longer ago than a
        cache.load(path, ImagePolicy(8))
    assert (cache.hits, cache.misses) == (1, 3)
    cache.load(a, ImagePolicy(8))
    assert (cache.hits, cache.misses) == (2, 3)
    cache.load(b, ImagePolicy(8))
    assert (cache.hits, cache.misses) == (2, 4)


def test_the_disk_store_serves_a_fresh_cache_without_decoding(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (32, 16), RED))
    store = tmp_path / "store"
    pixels, original = DecodedImageCache(directory=store).load(path, ImagePolicy(16))
    [entry] = [file for file in store.rglob("*") if file.is_file()]  # no temporary left behind
    assert entry.suffix == ".npy" and entry.parent.parent == store
    assert len(entry.parent.name) == 2 and entry.name.startswith(entry.parent.name)

    def no_decoding(*args: object) -> None:
        raise AssertionError("decoded an image the disk store holds")

    monkeypatch.setattr(images, "_decode", no_decoding)
    fresh = DecodedImageCache(max_bytes=0, directory=store)  # memory off: every load is disk
    for _ in range(2):
        again, again_original = fresh.load(path, ImagePolicy(16))
        assert torch.equal(again, pixels) and again_original == original == (32, 16)
    assert (fresh.hits, fresh.misses) == (2, 0)


def test_a_damaged_disk_entry_is_decoded_again(tmp_path: Path) -> None:
    path = save(tmp_path / "a.png", Image.new("RGB", (16, 16), RED))
    store = tmp_path / "store"
    pixels, _ = DecodedImageCache(directory=store).load(path, ImagePolicy(16))
    [entry] = store.rglob("*.npy")
    entry.write_bytes(entry.read_bytes()[:100])
    fresh = DecodedImageCache(directory=store)
    assert torch.equal(fresh.load(path, ImagePolicy(16))[0], pixels)
    assert (fresh.hits, fresh.misses) == (0, 1)
    assert torch.equal(DecodedImageCache(directory=store).load(path, ImagePolicy(16))[0], pixels)


def test_rejected_images_are_not_cached(tmp_path: Path) -> None:
    path = save(tmp_path / "dot.png", Image.new("RGB", (1, 1)))
    store = tmp_path / "store"
    cache = DecodedImageCache(directory=store)
    for _ in range(2):
        with pytest.raises(Rejected, match="image too small"):
            cache.load(path, ImagePolicy(16))
    assert (cache.hits, cache.misses) == (0, 2)
    assert not list(store.rglob("*.npy"))
