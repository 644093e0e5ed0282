"""The annotated video keeps the source's sound, cut to the video's length."""

import av
import numpy as np
import pytest

from conftest import BOTTLE_VIDEO, run_cli

RATE = 48000


def clip_with_tone(dst, frames, audio_codec, container_format):
    """``frames`` real frames with a 440 Hz tone under them, encoded by FFmpeg (PyAV)."""
    with av.open(str(BOTTLE_VIDEO)) as inp, av.open(str(dst), "w", format=container_format) as out:
        s_in = inp.streams.video[0]
        video = out.add_stream("libx264", rate=s_in.average_rate)
        video.width, video.height, video.pix_fmt = s_in.width, s_in.height, "yuv420p"
        audio = out.add_stream(audio_codec, rate=RATE, layout="mono")
        for i, frame in enumerate(inp.decode(s_in)):
            if i == frames:
                break
            image = av.VideoFrame.from_ndarray(frame.to_ndarray(format="bgr24"), format="bgr24")
            image.pts = i
            out.mux(video.encode(image))
        out.mux(video.encode(None))
        samples = 0.3 * np.sin(2 * np.pi * 440 * np.arange(int(frames / s_in.average_rate * RATE)) / RATE)
        sample_format = audio.codec_context.format.name
        for start in range(0, len(samples), 1024):
            chunk = samples[start:start + 1024]
            data = (chunk * 32767).astype(np.int16) if sample_format.startswith("s16") else chunk.astype(np.float32)
            block = av.AudioFrame.from_ndarray(data[None, :], format=sample_format, layout="mono")
            block.sample_rate, block.pts = RATE, start
            out.mux(audio.encode(block))
        out.mux(audio.encode(None))
    return dst


def tracks(path):
    """(video frames, video seconds, audio codec, audio seconds decoded, audio loudness) of a file."""
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        if not container.streams.audio:
            return video.frames, None, None, None, None
        audio = container.streams.audio[0]
        decoded = [f.to_ndarray() for f in container.decode(audio)]
        pcm = np.concatenate(decoded, axis=1)
        return (video.frames, float(video.frames / video.average_rate), audio.codec_context.name,
                pcm.shape[1] / audio.codec_context.sample_rate, float(np.abs(pcm).mean()))


@pytest.mark.parametrize("codec, fmt, name, kept_as", [
    ("aac", "mp4", "tone.mp4", "aac"),  # copied as it is
    ("pcm_s16le", "mov", "tone.mov", "aac"),  # MP4 cannot hold PCM: re-encoded
])
def test_the_source_audio_is_kept_and_cut_to_the_video(tmp_path, codec, fmt, name, kept_as):
    source = clip_with_tone(tmp_path / name, 60, codec, fmt)
    proc = run_cli("annotate", str(source), "--out", str(tmp_path / "out"), "--imgsz", "320", "--max-frames", "40")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    frames, seconds, audio_codec, audio_seconds, loudness = tracks(tmp_path / "out" / "tone.annotated.mp4")
    assert frames == 40 and audio_codec == kept_as
    assert audio_seconds == pytest.approx(seconds, abs=0.05)  # 40 of the 60 frames: the sound stops with them
    assert loudness > 0.1  # the tone, not silence


def test_a_video_without_audio_stays_silent(clips, tmp_path):
    proc = run_cli("annotate", str(clips["person"]), "--out", str(tmp_path), "--imgsz", "320")
    assert proc.returncode == 0, proc.stderr
    frames, _, audio_codec, _, _ = tracks(tmp_path / "person.annotated.mp4")
    assert frames == 40 and audio_codec is None
