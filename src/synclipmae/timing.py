"""The one owner of audio-visual timing (DESIGN §3).

No other module writes 25, 16000 or 640 as literals: they ask `TIMING` (or an `AVTiming` passed in).
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class AVTiming:
    fps: int = 25                 # video frames per second after resampling
    sample_rate: int = 16000      # audio samples per second after resampling (mono)
    mel_hop: int = 160            # audio samples between log-mel frames (10 ms)
    mel_window: int = 400         # samples in one log-mel window (25 ms)

    @property
    def samples_per_frame(self) -> int:  # 640: audio samples in one video frame
        return self.sample_rate // self.fps

    @property
    def mels_per_frame(self) -> int:  # 4: log-mel frames in one video frame
        return self.samples_per_frame // self.mel_hop

    @property
    def ms_per_frame(self) -> float:  # 40.0
        return 1000.0 / self.fps

    def frames_to_samples(self, frames: int) -> int:
        return frames * self.samples_per_frame

    def seconds_to_frames(self, seconds: float) -> int:
        return int(round(seconds * self.fps))


TIMING = AVTiming()
