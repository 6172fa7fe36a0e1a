"""``rolefusion-extract``: frames and WAVs out of clips in MELD's released layout.

The clips are made here with PyAV: 32x24 pixels, 10 frames at 10 fps, each frame one solid colour
(so a frame read back says which one it is), and a 440 Hz tone as AAC stereo audio.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import subprocess
import sys
import wave
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from rolefusion.commands import extract
from rolefusion.commands.extract import main
from rolefusion.data.video_clips import atomic_write, frames_at

COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255),
           (0, 255, 255), (128, 0, 0), (0, 128, 0), (0, 0, 128), (128, 128, 128)]  # fmt: skip
"""Frame i of every clip is COLOURS[i]."""
FPS, SIZE, TONE = 10, (32, 24), 440.0

GOOD = {  # split -> clip: audio sample rate, first frame's time in seconds
    ("train", "train_splits/dia0_utt0.mp4"): (44_100, 0.0),
    ("train", "train_splits/dia0_utt1.mp4"): (48_000, 0.0),
    ("val", "dev_splits_complete/dia0_utt0.mp4"): (48_000, 0.0),
    # Starts 3 s in, as clips cut from an episode may: the middle is not at half the end time.
    ("test", "output_repeated_splits_test/dia0_utt0.mp4"): (44_100, 3.0),
}
NO_AUDIO = "train_splits/dia1_utt0.mp4"
TRUNCATED = "dev_splits_complete/dia2_utt0.mp4"  # its index (at the end) is lost: cannot open
CUT_SHORT = "dev_splits_complete/dia3_utt0.mp4"  # index first (faststart): opens, half the packets
JUNK = ["output_repeated_splits_test/._dia0_utt0.mp4",  # macOS' AppleDouble file
        "output_repeated_splits_test/final_videos_testdia0_utt0.mp4"]  # fmt: skip


def write_clip(
    path: Path, sample_rate: int | None, start: float = 0.0, index_first: bool = False
) -> None:
    """A 1 s clip of len(COLOURS) frames, with a 1 s tone unless ``sample_rate`` is None."""
    path.parent.mkdir(parents=True, exist_ok=True)
    options = {"movflags": "faststart"} if index_first else {}
    with av.open(str(path), "w", options=options) as container:
        video = container.add_stream("libx264", rate=FPS)
        video.width, video.height, video.pix_fmt = *SIZE, "yuv420p"
        video.options = {"crf": "10", "preset": "ultrafast"}
        if sample_rate:
            audio = container.add_stream("aac", rate=sample_rate)
            audio.layout = "stereo"
        for index, colour in enumerate(COLOURS):
            frame = av.VideoFrame.from_ndarray(
                np.full((SIZE[1], SIZE[0], 3), colour, np.uint8), format="rgb24"
            )
            frame.pts = round(start * FPS) + index
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if sample_rate:
            tone = 0.5 * np.sin(2 * np.pi * TONE * np.arange(sample_rate) / sample_rate)
            stereo = np.stack([tone, tone]).astype(np.float32)
            for offset in range(0, sample_rate, 1024):
                chunk = av.AudioFrame.from_ndarray(
                    np.ascontiguousarray(stereo[:, offset : offset + 1024]), format="fltp",
                    layout="stereo",
                )  # fmt: skip
                chunk.sample_rate, chunk.pts = sample_rate, round(start * sample_rate) + offset
                container.mux(audio.encode(chunk))
            container.mux(audio.encode())


@pytest.fixture(scope="module")
def meld(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """MELD.Raw's clip folders: four good clips, one without audio, two cut in half, and two
    files that are not clips by their names."""
    root = tmp_path_factory.mktemp("MELD.Raw")
    for (_, name), (rate, start) in GOOD.items():
        write_clip(root / name, rate, start)
    write_clip(root / NO_AUDIO, None)
    write_clip(root / TRUNCATED, 48_000)
    write_clip(root / CUT_SHORT, 48_000, index_first=True)
    for name in (TRUNCATED, CUT_SHORT):
        whole = (root / name).read_bytes()
        (root / name).write_bytes(whole[: len(whole) // 2])
    for name in JUNK:
        (root / name).write_bytes(b"\0\5\26\7" * 64)
    return root


def run(*args: str | Path) -> tuple[int, str]:
    """``rolefusion-extract ARGS``: its exit status and what it printed."""
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        status = main([str(arg) for arg in args])
    return status, printed.getvalue()


@pytest.fixture(scope="module")
def first_run(meld: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, str]:
    """One extraction of ``meld`` with three frames per clip, on two worker processes."""
    out = tmp_path_factory.mktemp("extracted")
    status, printed = run(meld, "--out", out, "--frames", "3", "--workers", "2")
    return out, status, printed


def colour_index(path: Path) -> int:
    """Which of COLOURS the (lossy) image at ``path`` shows."""
    with Image.open(path) as image:
        assert image.size == SIZE
        mean = np.asarray(image.convert("RGB"), dtype=float).reshape(-1, 3).mean(axis=0)
    return int(np.argmin([np.linalg.norm(mean - colour) for colour in COLOURS]))


def tree(folder: Path) -> dict[str, int]:
    """Every file under ``folder`` with its modification time."""
    return {
        str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()
    }


@pytest.mark.parametrize(("split", "name"), list(GOOD), ids=[n for _, n in GOOD])
def test_each_good_clip_gives_its_middle_frame_and_three_evenly_spaced_ones(
    first_run: tuple[Path, int, str], split: str, name: str
) -> None:
    out, _, _ = first_run
    folder, stem = out / "frames" / split, Path(name).stem
    # 10 frames over 1 s: the middle (0.5 s) shows frame 5; the centres of three equal parts
    # (1/6, 1/2, 5/6 s) show frames 1, 5 and 8.
    assert colour_index(folder / f"{stem}.jpg") == 5
    assert [colour_index(folder / f"{stem}_{k}.jpg") for k in range(3)] == [1, 5, 8]
    with Image.open(folder / f"{stem}.jpg") as image:
        assert image.format == "JPEG"


@pytest.mark.parametrize(("split", "name"), list(GOOD), ids=[n for _, n in GOOD])
def test_each_good_clip_gives_a_16khz_mono_pcm16_wav_as_long_as_the_clip(
    first_run: tuple[Path, int, str], split: str, name: str
) -> None:
    out, _, _ = first_run
    with wave.open(str(out / "audio" / split / f"{Path(name).stem}.wav")) as wav:
        assert (wav.getframerate(), wav.getnchannels(), wav.getsampwidth()) == (16_000, 1, 2)
        samples = np.frombuffer(wav.readframes(wav.getnframes()), "<i2").astype(float)
    assert len(samples) / 16_000 == pytest.approx(1.0, abs=0.05)
    # The tone's pitch survives: the samples were resampled, not relabelled.
    spectrum = np.abs(np.fft.rfft(samples))
    assert np.argmax(spectrum) * 16_000 / len(samples) == pytest.approx(TONE, abs=5)


def test_each_bad_clip_is_listed_by_name_with_its_reason_and_the_others_are_extracted(
    meld: Path, first_run: tuple[Path, int, str]
) -> None:
    out, status, printed = first_run
    errors = json.loads((out / "extract_errors.json").read_text())
    assert errors.keys() == {str(meld / NO_AUDIO), str(meld / TRUNCATED), str(meld / CUT_SHORT)}
    assert errors[str(meld / NO_AUDIO)] == "no audio track"
    assert errors[str(meld / TRUNCATED)].startswith("cannot decode dia2_utt0.mp4: ")
    # FFmpeg reads the first half without a word; the index says what is missing.
    assert errors[str(meld / CUT_SHORT)].startswith(
        "cannot decode dia3_utt0.mp4: truncated, 5 of the 10 video packets"
    )
    assert status == 1
    for clip, reason in errors.items():
        assert f"failed {clip}: {reason}" in printed
    # The clip without audio still gives its frames; the truncated one gives nothing.
    assert (out / "frames" / "train" / "dia1_utt0.jpg").is_file()
    assert not (out / "audio" / "train" / "dia1_utt0.wav").exists()
    assert not list(out.rglob("dia2_utt0*")) and not list(out.rglob("dia3_utt0*"))
    assert "7 clips in" in printed and "4 extracted, 0 skipped" in printed
    # The files that are not clips by name are counted and left alone.
    assert f"skipped 2 files in {meld / 'output_repeated_splits_test'}" in printed
    assert not list(out.rglob("*final_videos*")) and not list(out.rglob("._*"))
    assert not list(out.rglob("*.part"))


def test_a_second_run_writes_nothing(
    meld: Path, first_run: tuple[Path, int, str], tmp_path: Path
) -> None:
    out, _, _ = first_run
    shutil.copytree(out, tmp_path / "out")  # copy2 keeps the modification times
    before = tree(tmp_path / "out")

    status, printed = run(meld, "--out", tmp_path / "out", "--frames", "3", "--workers", "1")

    assert tree(tmp_path / "out") == before
    assert "0 extracted, 4 skipped (outputs already there), 3 failed; 0 files written" in printed
    assert status == 1  # the bad clips are tried again, and fail again


def test_a_resumed_run_makes_only_the_missing_outputs(
    meld: Path, first_run: tuple[Path, int, str], tmp_path: Path
) -> None:
    out = tmp_path / "out"
    shutil.copytree(first_run[0], out)
    lost = [out / "audio" / "val" / "dia0_utt0.wav", out / "frames" / "test" / "dia0_utt0_1.jpg"]
    for path in lost:
        path.unlink()
    before = tree(out)

    _, printed = run(meld, "--out", out, "--frames", "3", "--workers", "1")

    after = tree(out)
    assert sorted(after.keys() - before.keys()) == sorted(str(p.relative_to(out)) for p in lost)
    assert {name: after[name] for name in before} == before
    assert colour_index(lost[1]) == 5
    assert "2 extracted, 2 skipped" in printed and "2 files written" in printed


def test_an_interrupted_write_leaves_the_old_file_or_none(tmp_path: Path) -> None:
    def half_then_stop(file: io.BufferedWriter) -> None:
        file.write(b"half a JPE")
        raise KeyboardInterrupt

    kept, absent = tmp_path / "kept.jpg", tmp_path / "absent.jpg"
    kept.write_bytes(b"the whole old image")
    for path in (kept, absent):
        with pytest.raises(KeyboardInterrupt):
            atomic_write(path, half_then_stop)
    assert kept.read_bytes() == b"the whole old image"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.jpg"]


def test_frames_are_chosen_by_presentation_time() -> None:
    """Decode order is not presentation order, and frames need not be evenly spaced: the frame
    on screen at each point of [first frame's start, last frame's end] is chosen."""
    timestamps = [100, 400, 150, 0]  # a variable frame rate, in decode order; ends at 500
    positions = [0.0, 0.25, 0.5, 0.79, 0.8, 1.0]
    assert frames_at(timestamps, 500, positions) == [0, 100, 150, 150, 400, 400]
    assert frames_at([3000, 3001], 3002, [0.5]) == [3001]  # a clip that starts late


def test_another_frame_count_is_refused_where_frames_of_one_exist(
    meld: Path, first_run: tuple[Path, int, str], tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    """``_k`` names do not say N: resuming 3 frames per clip with 5 would mix positions."""
    shutil.copytree(first_run[0], tmp_path / "out")
    with pytest.raises(SystemExit) as stopped:
        main([str(meld), "--out", str(tmp_path / "out"), "--frames", "5"])
    assert stopped.value.code == 2
    assert "holds 3 evenly spaced frames per clip" in capsys.readouterr().err
    assert run(meld, "--out", tmp_path / "out", "--frames", "1", "--no-audio")[0] == 1


def test_a_missing_root_or_clip_folder_is_named(
    tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    expected = {
        tmp_path / "nowhere": f"{tmp_path / 'nowhere'}: no such directory",
        tmp_path: "looked for train_splits/, dev_splits_complete/, output_repeated_splits_test/",
    }
    for root, message in expected.items():
        with pytest.raises(SystemExit) as stopped:
            main([str(root)])
        assert stopped.value.code == 2
        assert message in capsys.readouterr().err


def test_another_layout_is_given_by_its_folders_and_file_names(tmp_path: Path) -> None:
    write_clip(tmp_path / "videos" / "train" / "s01e02_0007.mp4", None)
    (tmp_path / "videos" / "train" / "notes.txt").write_text("not a clip")

    status, printed = run(tmp_path, "--split", "train=videos/train", "--pattern",
                          r"s\d+e\d+_\d+\.mp4", "--no-audio", "--image-format", "png")  # fmt: skip

    assert status == 0, printed
    with Image.open(tmp_path / "frames" / "train" / "s01e02_0007.png") as image:
        assert image.format == "PNG"
    assert colour_index(tmp_path / "frames" / "train" / "s01e02_0007.png") == 5
    assert not (tmp_path / "audio").exists()
    assert json.loads((tmp_path / "extract_errors.json").read_text()) == {}


def test_the_python_m_form_answers() -> None:
    done = subprocess.run([sys.executable, "-m", "rolefusion.extract", "--help"],
                          capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("usage: rolefusion-extract ")


def test_an_output_that_cannot_be_written_is_its_clips_error(tmp_path: Path) -> None:
    write_clip(tmp_path / "train_splits" / "dia0_utt0.mp4", 16_000)
    (tmp_path / "audio").write_text("a file where the audio folder should be")

    status, _ = run(tmp_path)

    assert status == 1
    [reason] = json.loads((tmp_path / "extract_errors.json").read_text()).values()
    assert reason.startswith(f"cannot write {tmp_path / 'audio' / 'train'}: ")
    assert colour_index(tmp_path / "frames" / "train" / "dia0_utt0.jpg") == 5


def _die(task: object) -> None:
    os._exit(1)  # as the out-of-memory killer would end it


def test_a_worker_that_dies_fails_its_clips_not_the_run(
    meld: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(extract, "extract_clip", _die)  # the workers fork with it

    status, printed = run(meld, "--out", tmp_path, "--workers", "2")

    assert status == 1
    errors = json.loads((tmp_path / "extract_errors.json").read_text())
    assert len(errors) == 7
    assert set(errors.values()) == {"its worker process died (out of memory?)"}
    assert "0 extracted" in printed
