"""Captions (.vtt, .srt): `<v Speaker>` voices or `Speaker:` prefixes; consecutive cues of one speaker
become one turn."""

from __future__ import annotations

import io
import re
from pathlib import Path

from pipeline.errors import IngestError
from pipeline.ingest.text import new_transcript
from pipeline.transcript import SPEAKER_NAME, Transcript, Turn

_CUE_TIME = re.compile(r"^\s*(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}\s+-->\s+(?:\d+:)?\d{1,2}:\d{2}[.,]\d{3}(?:\s.*)?$")
_CAPTION_LABEL = re.compile(rf"^-?\s*(?P<name>{SPEAKER_NAME})\s*:\s+")


def read_captions(path: Path, name: str, text: str, encoding: str, metadata: dict[str, str], fmt: str) -> Transcript:
    import webvtt
    from webvtt.errors import MalformedCaptionError, MalformedFileError

    for number, line in enumerate(text.split("\n"), start=1):
        if "-->" in line and not _CUE_TIME.match(line):
            raise IngestError(path, f"line {number}: broken cue timestamp '{line.strip()}'")
    try:
        captions = webvtt.from_buffer(io.StringIO(text), format=fmt, strict=(fmt == "vtt"))
    except (MalformedCaptionError, MalformedFileError) as exc:
        raise IngestError(path, f"not a valid .{fmt} file: {exc}") from exc
    if not len(captions):
        raise IngestError(path, f"no captions found in .{fmt} file")

    merged: list[dict] = []
    for caption in captions.captions:
        body = " ".join(part.strip() for part in caption.text.split("\n") if part.strip())
        speaker = caption.voice.strip() if caption.voice else None
        if speaker is None:
            m = _CAPTION_LABEL.match(body)
            if m:
                speaker, body = m.group("name").strip(), body[m.end() :]
        if not body:
            continue
        if merged and merged[-1]["speaker"] == speaker:
            merged[-1]["words"].append(body)
        else:
            merged.append({"speaker": speaker, "timestamp": caption.start, "words": [body]})

    parts: list[str] = []
    turns: list[Turn] = []
    pos = 0
    for item in merged:
        label = f"{item['speaker']}: " if item["speaker"] else ""
        line = label + " ".join(item["words"])
        turns.append(
            Turn(
                index=len(turns),
                speaker=item["speaker"],
                start=pos,
                end=pos + len(line),
                text_start=pos + len(label),
                timestamp=item["timestamp"],
            )
        )
        parts.append(line)
        pos += len(line) + 1
    return new_transcript(path, name, fmt, encoding, "\n".join(parts), turns, metadata)
