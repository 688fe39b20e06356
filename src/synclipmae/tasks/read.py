"""Lip reading of video files (`synclipmae read`, DESIGN §6): decode -> faces -> crops (the path
`sync` reads) -> the head's per-frame inputs for each face track -> CTC decoding -> text.

    read_file(path, model, head, tokenizer) -> record   never raises for a bad file

The record: input, status ("ok" | "error"), error (one line), text (the main track's: the one with
the most frames), tracks [{track, start_frame, end_frame, text}] (frames on the file's 25 fps
timeline, end exclusive), frames, faceless_frames, fps_in, model, head, version. A track that goes
on across a long file's 60 s segments is read per segment, like `sync`'s tracks.
"""
from __future__ import annotations

from pathlib import Path

from synclipmae.config import IMG_SIZE
from synclipmae.media.pipeline import SEGMENT_S, FaceError, errors_into, iter_face_segments
from synclipmae.tasks.vsr import SlotGrammar, head_features, transcribe
from synclipmae.version import __version__

READ_MIN_FRAMES = 10  # default: the shortest file read (0.4 s; a face track needs 10 frames)


def new_record(path, model_name: str | None = None, head_name: str | None = None, error: str | None = None) -> dict:
    """A record with nothing read yet: status "ok", or "error" with `error` (one line) when given."""
    return {"input": str(path), "status": "error" if error else "ok", "error": error, "text": None, "tracks": [],
            "frames": 0, "faceless_frames": 0, "fps_in": None, "model": model_name, "head": head_name,
            "version": __version__}


def read_file(path, model, head, tokenizer, beam: int = 8, grammar: SlotGrammar | None = None,
              backend: str = "auto", model_name: str | None = None, head_name: str | None = None,
              segment_s: float = SEGMENT_S) -> dict:
    """Read the lips of every face track of a video file (see the module docstring)."""
    record = new_record(path, model_name, head_name)
    with errors_into(record, path):
        size = model.cfg.model.img_size if model is not None else IMG_SIZE
        for seg in iter_face_segments(path, size, need_audio=False, min_frames=READ_MIN_FRAMES, backend=backend,
                                      segment_s=segment_s):
            record["fps_in"] = round(seg.fps_in, 3)
            record["frames"] += seg.num_frames
            record["faceless_frames"] += seg.faceless_frames
            for tc in seg.tracks:
                text = transcribe(head, tokenizer, [head_features(model, tc.crops, head.cfg.inputs)], beam=beam,
                                  grammar=grammar)[0]
                record["tracks"].append({"track": len(record["tracks"]), "start_frame": tc.start_frame,
                                         "end_frame": tc.end_frame, "text": text})
        if not record["tracks"]:
            raise FaceError(f"{Path(path).name}: no face found in {record['frames']} frames")
        record["text"] = max(record["tracks"], key=lambda t: t["end_frame"] - t["start_frame"])["text"]
    return record
