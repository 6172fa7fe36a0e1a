"""Tiny copies of real data sets in their released layouts, written by the tests themselves.

Each writer fills a directory exactly as the data set ships (file names, columns, quirks such
as EmoryNLP's speaker lists written as strings) with a few examples whose images are plain
colour patches, and returns that directory for ``data.root``.
"""

from __future__ import annotations

import csv
import json
from pathlib import Path

from PIL import Image

COLOURS = [(200, 30, 30), (30, 160, 40), (40, 60, 200), (220, 200, 40)]
EMOTIONS = ["neutral", "joy", "anger", "sadness"]
SPEAKERS = ["Monica Geller", "Joey Tribbiani", "Chandler Bing"]
GENRES = ["Drama", "Comedy", "Action", "Sci-Fi"]


def write_image(path: Path, index: int, size: tuple[int, int] = (48, 36)) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, COLOURS[index % len(COLOURS)]).save(path)


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows), encoding="utf-8")


def write_csv(path: Path, header: list[str], rows: list[list[object]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)


SPLIT_SIZES = {"train": 16, "dev": 8, "test": 8}


def hateful_memes(root: Path, test_labels: bool = True) -> Path:
    """``img/<id>.png`` and ``train.jsonl``, ``dev_seen.jsonl``, ``test_seen.jsonl``."""
    names = {"train": "train.jsonl", "dev": "dev_seen.jsonl", "test": "test_seen.jsonl"}
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            meme_id = 10000 + 100 * list(SPLIT_SIZES).index(split) + i
            write_image(root / "img" / f"{meme_id}.png", i)
            row = {
                "id": meme_id,
                "img": f"img/{meme_id}.png",
                "label": i % 2,
                "text": f"meme number {i} says {'hate' if i % 2 else 'love'}",
            }
            if split == "test" and not test_labels:
                del row["label"]
            rows.append(row)
        write_jsonl(root / names[split], rows)
    return root


def mmimdb(root: Path) -> Path:
    """``dataset/<id>.jpeg`` posters; JSONL with a list of plots and a list of genres."""
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            film = f"{split}{i:05d}"
            write_image(root / "dataset" / f"{film}.jpeg", i, (40, 60))
            genres = [GENRES[i % 4]] + ([GENRES[(i + 1) % 4]] if i % 3 == 0 else [])
            rows.append(
                {
                    "id": film,
                    "image": f"dataset/{film}.jpeg",
                    "plot": [f"a film about {' and '.join(genres)}", "another plot"],
                    "genres": genres,
                }
            )
        write_jsonl(root / f"{split}.jsonl", rows)
    return root


MELD_HEADER = [
    "Sr No.",
    "Utterance",
    "Speaker",
    "Emotion",
    "Sentiment",
    "Dialogue_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
]
SPLIT_NAMES = {"train": "train", "dev": "val", "test": "test"}
"""The release's split names -> rolefusion's, which name the folders of extracted frames."""


def meld(root: Path, frames: bool = True) -> Path:
    """``{train,dev,test}_sent_emo.csv`` as released and, with ``frames``, a frame per utterance
    where ``rolefusion-extract`` writes them (``frames/<split>/dia<D>_utt<U>.jpg``)."""
    root.mkdir(parents=True, exist_ok=True)
    sentiment = {
        "neutral": "neutral",
        "joy": "positive",
        "anger": "negative",
        "sadness": "negative",
    }
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            if frames:
                write_image(root / f"frames/{SPLIT_NAMES[split]}/dia{i // 4}_utt{i % 4}.jpg", i)
            emotion = EMOTIONS[i % 4]
            rows.append(
                [
                    i + 1,
                    f"Oh, it's line {i}!",
                    SPEAKERS[i % 3],
                    emotion,
                    sentiment[emotion],
                    i // 4,
                    i % 4,
                    3,
                    7,
                    "00:14:38,127",
                    "00:14:40,378",
                ]
            )
        write_csv(root / f"{split}_sent_emo.csv", MELD_HEADER, rows)
    return root


EMORYNLP_HEADER = [
    "Utterance",
    "Speaker",
    "Emotion",
    "Scene_ID",
    "Utterance_ID",
    "Season",
    "Episode",
    "StartTime",
    "EndTime",
]


def emorynlp(root: Path, frames: bool = True) -> Path:
    """``emorynlp_{train,dev,test}_final.csv``: speakers as lists written as strings; with
    ``frames``, a frame per utterance (``frames/<split>/s<S>_e<E>_c<C>_u<U>.jpg``)."""
    root.mkdir(parents=True, exist_ok=True)
    for split, size in SPLIT_SIZES.items():
        rows = []
        for i in range(size):
            if frames:
                frame = f"frames/{SPLIT_NAMES[split]}/s1_e2_c{i // 4}_u{i % 4}.jpg"
                write_image(root / frame, i)
            speakers = [SPEAKERS[i % 3]] + ([SPEAKERS[(i + 1) % 3]] if i == 5 else [])
            rows.append(
                [
                    f"What {i}?",
                    str(speakers),
                    ["Joyful", "Mad", "Neutral"][i % 3],
                    i // 4,
                    i % 4,
                    1,
                    2,
                    "0:00:01",
                    "0:00:02",
                ]
            )
        write_csv(root / f"emorynlp_{split}_final.csv", EMORYNLP_HEADER, rows)
    return root


def plain_manifest(root: Path) -> Path:
    """``{train,val,test}.csv`` with ``image,text,label``."""
    for split, size in {"train": 16, "val": 8, "test": 8}.items():
        rows = []
        for i in range(size):
            image = f"images/{split}_{i}.png"
            write_image(root / image, i)
            rows.append(
                [
                    image,
                    f"arr matey {i}" if i % 2 else f"hello there {i}",
                    ["pirate", "knight"][i % 2],
                ]
            )
        write_csv(root / f"{split}.csv", ["image", "text", "label"], rows)
    return root


PRESETS = {
    "hateful_memes": hateful_memes,
    "mmimdb": mmimdb,
    "meld": meld,
    "emorynlp": emorynlp,
    "manifest": plain_manifest,
}
