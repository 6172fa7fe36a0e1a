"""Image files in, square uint8 tensors out: one decoding path for every mode Pillow can open.

Images in the wild come as palettes, 16-bit scans, CMYK prints, transparent stickers and phone
photos rotated by an EXIF tag; each is turned into RGB the way a person would see it, before any
model does. A file that cannot give such an image raises :class:`Rejected` with a stable reason,
so ``data.on_error`` decides whether it stops the run or is counted and skipped.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
import warnings
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

import numpy as np
import torch
from PIL import ExifTags, Image, ImageOps, UnidentifiedImageError

from rolefusion.choices import require_choice
from rolefusion.data.files import ANYWHERE, FileAccess
from rolefusion.data.rejections import Rejected

ResizeMode = Literal["pad", "crop", "stretch"]

BACKGROUND = (255, 255, 255)
"""What transparent pixels are composited over. White, because the transparent parts of memes,
stickers and posters are background, and black is a likelier colour for the foreground (text,
outlines), which would vanish into a black background."""

REDUCING_GAP = 3.0
"""Pillow first shrinks by an integer factor with a box filter, then resamples the last 3x or less
bicubically: much faster on big images and, by Pillow's measurements, indistinguishable from a
plain bicubic resize at this gap."""

CACHE_VERSION = 1
"""Part of every cache key: bump it when decoding changes, so a disk store kept between runs
never serves images made by the old code."""

_SWAPS_SIDES = {5, 6, 7, 8}
"""EXIF orientations that turn the image by 90 degrees, so width and height trade places."""


@dataclass(frozen=True)
class ImagePolicy:
    """How every image of a data set becomes a ``[3, size, size]`` tensor (``data.images``)."""

    size: int
    """Side of the square output, in pixels."""
    resize: ResizeMode = "pad"
    """``pad`` keeps the whole image (letterboxed with ``pad_value``), ``crop`` fills the square
    and loses the ends of the longer side, ``stretch`` keeps everything but distorts shapes."""
    pad_value: int = 0
    """Grey level of the padding, 0-255."""
    min_side: int = 8
    """Images with a shorter side are refused: icons and tracking pixels carry nothing."""
    max_pixels: int = 40_000_000
    """Images with more pixels are refused before being decoded, so a huge or malicious file
    cannot exhaust memory. Pillow's own bomb check (twice ``Image.MAX_IMAGE_PIXELS``) still
    applies above this."""

    def __post_init__(self) -> None:
        for name, low in (("size", 1), ("pad_value", 0), ("min_side", 1), ("max_pixels", 1)):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < low:
                raise ValueError(f"data.images.{name} must be an integer >= {low}, got {value!r}")
        if self.pad_value > 255:
            raise ValueError(
                f"data.images.pad_value must be a grey level 0-255, got {self.pad_value}"
            )
        require_choice("data.images.resize", self.resize, ResizeMode)


def load_image(
    path: Path, policy: ImagePolicy, files: FileAccess = ANYWHERE
) -> tuple[torch.Tensor, tuple[int, int]]:
    """Decode ``path`` into a contiguous uint8 tensor ``[3, size, size]`` following ``policy``.

    Returns the tensor and the image's original ``(width, height)`` as displayed, that is after
    its EXIF orientation; callers that reason about aspect ratios want what a person sees.

    Raises:
        Rejected: ``image file not found``, ``unreadable image``, ``image too small``,
            ``image too large``, or what ``files`` refuses (:meth:`FileAccess.read`).
    """
    return _decode(io.BytesIO(files.read(path, "image")), policy)


class DecodedImageCache:
    """Decoded, resized images, so an epoch after the first decodes nothing.

    Entries are keyed by a hash of the file's bytes and of the :class:`ImagePolicy`, so an
    edited file or a changed policy never gets a stale image. The memory store is an LRU bounded
    by tensor bytes. Each DataLoader worker is a forked process holding its own copy of it, so
    with workers the optional disk store (``directory``) is what they share: one ``.npy`` file
    per entry, written atomically so that no process ever reads a half-written one. Rejected
    images are never cached: they raise every time, and are counted every time.

    ``hits`` counts images served from memory or disk, ``misses`` the ones decoded.
    """

    def __init__(self, max_bytes: int = 2 * 1024**3, directory: Path | None = None) -> None:
        """``max_bytes=0`` keeps nothing in memory (the disk store alone, if any)."""
        self.max_bytes, self.directory = max_bytes, directory
        self.hits = self.misses = 0
        self._memory: OrderedDict[str, tuple[torch.Tensor, tuple[int, int]]] = OrderedDict()
        self._memory_bytes = 0

    def load(
        self, path: Path, policy: ImagePolicy, files: FileAccess = ANYWHERE
    ) -> tuple[torch.Tensor, tuple[int, int]]:
        """What :func:`load_image` returns, from the cache when it can.

        The tensor is a copy the caller may modify in place without corrupting the cache.
        """
        pixels, size, _ = self.load_keyed(path, policy, files)
        return pixels, size

    def load_keyed(
        self, path: Path, policy: ImagePolicy, files: FileAccess = ANYWHERE
    ) -> tuple[torch.Tensor, tuple[int, int], str]:
        """:meth:`load`, and the key of the file's content: equal keys, equal bytes."""
        data = files.read(path, "image")
        key = _cache_key(data, policy)
        entry = self._memory.get(key)
        if entry is not None:
            self._memory.move_to_end(key)
            self.hits += 1
        else:
            entry = self._read_disk(key, policy)
            if entry is None:
                self.misses += 1
                # Decoded from the bytes that were hashed, so the key always matches the content.
                entry = _decode(io.BytesIO(data), policy)
                self._write_disk(key, entry)
            else:
                self.hits += 1
            self._remember(key, entry)
        return entry[0].clone(), entry[1], key

    def _remember(self, key: str, entry: tuple[torch.Tensor, tuple[int, int]]) -> None:
        size = entry[0].numel()
        if size > self.max_bytes:
            return
        self._memory[key] = entry
        self._memory_bytes += size
        while self._memory_bytes > self.max_bytes:
            _, (evicted, _) = self._memory.popitem(last=False)
            self._memory_bytes -= evicted.numel()

    def _disk_path(self, key: str) -> Path | None:
        return None if self.directory is None else Path(self.directory) / key[:2] / f"{key}.npy"

    def _read_disk(
        self, key: str, policy: ImagePolicy
    ) -> tuple[torch.Tensor, tuple[int, int]] | None:
        """The stored entry, or None when there is none or it cannot be trusted (then it is
        decoded again and overwritten)."""
        file = self._disk_path(key)
        if file is None or not file.is_file():
            return None
        try:
            with open(file, "rb") as stream:
                original, pixels = np.load(stream), np.load(stream)
        except (OSError, ValueError, EOFError):
            return None
        expected = (3, policy.size, policy.size)
        if original.shape != (2,) or pixels.shape != expected or pixels.dtype != np.uint8:
            return None
        return torch.from_numpy(pixels), (int(original[0]), int(original[1]))

    def _write_disk(self, key: str, entry: tuple[torch.Tensor, tuple[int, int]]) -> None:
        """Two arrays in one ``.npy`` stream: the original ``(width, height)``, then the pixels.
        Written to a temporary file beside the target and renamed over it, which is atomic."""
        file = self._disk_path(key)
        if file is None:
            return
        file.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=file.parent, prefix=key, suffix=".tmp")
        try:
            with os.fdopen(handle, "wb") as stream:
                np.save(stream, np.asarray(entry[1], dtype=np.int64))
                np.save(stream, entry[0].numpy())
            os.replace(temporary, file)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise


def _cache_key(data: bytes, policy: ImagePolicy) -> str:
    digest = hashlib.blake2b(digest_size=20)
    digest.update(f"{CACHE_VERSION} {policy!r}\n".encode())
    digest.update(data)
    return digest.hexdigest()


def _decode(file: BinaryIO, policy: ImagePolicy) -> tuple[torch.Tensor, tuple[int, int]]:
    try:
        with warnings.catch_warnings():
            # policy.max_pixels is the limit that counts; Pillow's lower warning would only be
            # noise (Pillow still raises DecompressionBombError far above it).
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            with Image.open(file) as image:
                width, height = image.size  # from the header: nothing is decoded yet
                _check_size(width, height, policy)
                draft = _draft_size(width, height, policy)
                if draft is not None:
                    image.draft(None, draft)  # JPEG decodes at 1/2, 1/4 or 1/8; others ignore
                image.load()
                orientation = image.getexif().get(ExifTags.Base.Orientation, 1)
                rgb = _to_rgb(ImageOps.exif_transpose(image))
    except Image.DecompressionBombError as error:
        raise Rejected("image too large", field="image", detail=str(error)) from None
    except UnidentifiedImageError:
        # Pillow's message names the stream object, not the file: say what it means instead.
        detail = "not an image format Pillow can identify"
        raise Rejected("unreadable image", field="image", detail=detail) from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise Rejected("unreadable image", field="image", detail=str(error)) from None
    original = (height, width) if orientation in _SWAPS_SIDES else (width, height)
    pixels = np.asarray(_fit(rgb, policy)).transpose(2, 0, 1).copy()  # writable for torch
    return torch.from_numpy(pixels), original


def _check_size(width: int, height: int, policy: ImagePolicy) -> None:
    if min(width, height) < policy.min_side:
        detail = f"{width}x{height} pixels, data.images.min_side={policy.min_side}"
        raise Rejected("image too small", field="image", detail=detail)
    if width * height > policy.max_pixels:
        detail = f"{width}x{height} pixels, data.images.max_pixels={policy.max_pixels}"
        raise Rejected("image too large", field="image", detail=detail)


def _draft_size(width: int, height: int, policy: ImagePolicy) -> tuple[int, int] | None:
    """The size to ask a JPEG decoder for: it picks the largest scale 1/8-1/1 that stays at or
    above it, so asking for the image divided by ``factor`` (rounded up) keeps at least
    ``policy.size`` pixels on the side that the resize maps to ``size``. None: no gain."""
    needed = max(width, height) if policy.resize == "pad" else min(width, height)
    factor = needed // policy.size
    if factor < 2:
        return None
    return -(-width // factor), -(-height // factor)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode in ("I;16", "I;16L", "I;16B", "I;16N", "I", "F"):
        # convert("RGB") would clip these to 0-255 instead of scaling them.
        image = Image.fromarray(_grey_to_8bit(np.asarray(image), image.mode))
    if image.has_transparency_data:  # alpha channels, and palettes or colours marked transparent
        background = Image.new("RGBA", image.size, (*BACKGROUND, 255))
        return Image.alpha_composite(background, image.convert("RGBA")).convert("RGB")
    return image.convert("RGB")


def _grey_to_8bit(pixels: np.ndarray, mode: str) -> np.ndarray:
    """Scale a high-depth grey image by the range its values really use."""
    values = np.nan_to_num(pixels.astype(np.float32))
    if mode.startswith("I;16") or (mode == "I" and values.max() <= 65535):
        # "I" is where Pillow puts 16-bit data of some formats, rarely real 32-bit values.
        values = values / 257
    elif mode == "I":
        values = values * (255 / (2**31 - 1))
    elif values.max() <= 1:  # "F" holding 0-1 intensities; otherwise it is taken as 0-255
        values = values * 255
    return np.clip(np.round(values), 0, 255).astype(np.uint8)


def _fit(image: Image.Image, policy: ImagePolicy) -> Image.Image:
    size, (width, height) = policy.size, image.size
    if policy.resize == "stretch":
        return _resize(image, (size, size))
    if policy.resize == "crop":
        side = min(width, height)
        left, top = (width - side) / 2, (height - side) / 2
        return _resize(image, (size, size), box=(left, top, left + side, top + side))
    scale = size / max(width, height)
    scaled = _resize(image, (max(1, round(width * scale)), max(1, round(height * scale))))
    canvas = Image.new("RGB", (size, size), (policy.pad_value,) * 3)
    canvas.paste(scaled, ((size - scaled.width) // 2, (size - scaled.height) // 2))
    return canvas


def _resize(
    image: Image.Image,
    size: tuple[int, int],
    box: tuple[float, float, float, float] | None = None,
) -> Image.Image:
    return image.resize(size, Image.Resampling.BICUBIC, box=box, reducing_gap=REDUCING_GAP)
