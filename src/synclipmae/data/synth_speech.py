"""SynthTalk speech (private helper of `synclipmae.data.synth`, DESIGN §5).

What is here, in the order it runs:

1. a built-in vocabulary of pseudo-words from a syllable grammar, each spelled by its phonemes
   (`VOCABULARY`, `LEXICON`), so the spelling is a function of what the lips do;
2. `utterance`: sentences of 3-8 words laid out on a time line (phoneme durations 60-150 ms scaled by
   the speaking rate, pauses between words and sentences) with an intonation contour;
3. `synthesize`: source-filter audio in numpy (glottal pulses at f0 with jitter and shimmer through a
   cascade of three formant resonators scaled per speaker; band noise for fricatives; bursts for
   plosives; aspiration);
4. `mouth_track`: each phoneme's mouth target (opening, width, rounding, teeth, tongue), sampled at
   sub-frame times, smoothed by dominance-weighted co-articulation and averaged to frames, so the
   mouth at frame t is a function of the audio around frame t at offset 0.

numpy only at import; scipy is imported inside the functions that use it.
"""
from __future__ import annotations

import functools
import random
from dataclasses import dataclass

import numpy as np

from synclipmae.timing import TIMING

# ----------------------------------------------------------------------------------------------
# Phoneme inventory. Symbols are also the spelling: words are written phoneme by phoneme.
# ----------------------------------------------------------------------------------------------

VOWELS = ("a", "e", "i", "o", "u")
CONSONANTS = ("p", "b", "m", "f", "v", "t", "d", "n", "s", "z", "l", "r", "k", "g", "h", "w", "y",
              "sh", "th")
PHONEMES = VOWELS + CONSONANTS

# Mouth targets, one row per phoneme: opening, width, rounding, teeth, tongue (each 0..1), and the
# co-articulation dominance (how strongly the phoneme holds its target against its neighbours).
MOUTH_TARGETS: dict[str, tuple[float, float, float, float, float, float]] = {
    "a": (1.00, 0.60, 0.05, 0.45, 0.30, 1.0),
    "e": (0.65, 0.80, 0.00, 0.80, 0.20, 1.0),
    "i": (0.30, 1.00, 0.00, 1.00, 0.00, 1.0),
    "o": (0.70, 0.25, 0.85, 0.30, 0.10, 1.0),
    "u": (0.28, 0.05, 1.00, 0.10, 0.00, 1.0),
    "p": (0.00, 0.50, 0.10, 0.00, 0.00, 8.0),
    "b": (0.00, 0.50, 0.10, 0.00, 0.00, 8.0),
    "m": (0.00, 0.50, 0.10, 0.00, 0.00, 8.0),
    "f": (0.08, 0.55, 0.00, 1.00, 0.00, 4.0),
    "v": (0.08, 0.55, 0.00, 1.00, 0.00, 4.0),
    "t": (0.25, 0.60, 0.00, 0.75, 0.60, 1.5),
    "d": (0.25, 0.60, 0.00, 0.75, 0.60, 1.5),
    "n": (0.22, 0.60, 0.00, 0.70, 0.60, 1.5),
    "s": (0.12, 0.75, 0.00, 1.00, 0.00, 2.0),
    "z": (0.12, 0.75, 0.00, 1.00, 0.00, 2.0),
    "l": (0.35, 0.60, 0.00, 0.60, 0.90, 1.2),
    "r": (0.28, 0.35, 0.60, 0.40, 0.20, 1.2),
    "k": (0.35, 0.55, 0.10, 0.50, 0.20, 1.0),
    "g": (0.35, 0.55, 0.10, 0.50, 0.20, 1.0),
    "h": (0.45, 0.55, 0.00, 0.40, 0.10, 0.3),
    "w": (0.12, 0.05, 1.00, 0.00, 0.00, 3.0),
    "y": (0.20, 0.85, 0.00, 0.80, 0.00, 1.2),
    "sh": (0.20, 0.30, 0.70, 0.90, 0.00, 2.0),
    "th": (0.25, 0.60, 0.00, 0.80, 1.00, 1.5),
}
SILENCE_MOUTH = (0.0, 0.5, 0.05, 0.0, 0.0, 2.0)  # closed, relaxed mouth in pauses

# Acoustics, one row per phoneme: kind, formants F1-F3 (Hz, before the speaker's formant scale; None =
# take the next vowel's), gains of the five excitation tracks, duration range (ms, before the rate).
# Tracks: voice (glottal source through the formants), asp (noise through the formants),
# hi / mid / flat (band noise that bypasses the formants: s-like, sh-like, broad f-like).
# A gain is the RMS level relative to a stressed "a" (1.0): fricatives sit 10-20 dB below vowels.
_TRACKS = ("voice", "asp", "hi", "mid", "flat")


@dataclass(frozen=True)
class _Phone:
    kind: str                                  # vowel | nasal | approx | fric | plosive
    formants: tuple[float, float, float] | None
    gains: tuple[float, float, float, float, float]   # voice, asp, hi, mid, flat
    dur_ms: tuple[float, float]
    burst: str = ""                            # plosives: the noise track of the release burst
    voiced: bool = False


ACOUSTICS: dict[str, _Phone] = {
    "a": _Phone("vowel", (750, 1220, 2550), (1.00, 0, 0, 0, 0), (95, 150), voiced=True),
    "e": _Phone("vowel", (540, 1850, 2550), (0.90, 0, 0, 0, 0), (90, 140), voiced=True),
    "i": _Phone("vowel", (290, 2250, 2950), (0.80, 0, 0, 0, 0), (85, 135), voiced=True),
    "o": _Phone("vowel", (460, 860, 2450), (0.95, 0, 0, 0, 0), (95, 150), voiced=True),
    "u": _Phone("vowel", (320, 870, 2250), (0.80, 0, 0, 0, 0), (90, 140), voiced=True),
    "m": _Phone("nasal", (260, 1050, 2250), (0.35, 0, 0, 0, 0), (65, 105), voiced=True),
    "n": _Phone("nasal", (260, 1500, 2500), (0.35, 0, 0, 0, 0), (60, 100), voiced=True),
    "l": _Phone("approx", (360, 1100, 2700), (0.55, 0, 0, 0, 0), (60, 95), voiced=True),
    "r": _Phone("approx", (380, 1200, 1650), (0.55, 0, 0, 0, 0), (60, 95), voiced=True),
    "w": _Phone("approx", (300, 700, 2200), (0.50, 0, 0, 0, 0), (60, 90), voiced=True),
    "y": _Phone("approx", (280, 2150, 3000), (0.50, 0, 0, 0, 0), (60, 90), voiced=True),
    "f": _Phone("fric", None, (0, 0, 0, 0, 0.12), (85, 130)),
    "th": _Phone("fric", None, (0, 0, 0, 0, 0.10), (80, 125)),
    "s": _Phone("fric", None, (0, 0, 0.30, 0, 0), (90, 140)),
    "sh": _Phone("fric", None, (0, 0, 0, 0.30, 0), (90, 140)),
    "h": _Phone("fric", None, (0, 0.20, 0, 0, 0), (60, 95)),
    "v": _Phone("fric", None, (0.30, 0, 0, 0, 0.10), (70, 110), voiced=True),
    "z": _Phone("fric", None, (0.30, 0, 0.18, 0, 0), (75, 115), voiced=True),
    "p": _Phone("plosive", None, (0, 0.20, 0, 0, 0), (70, 115), burst="flat"),
    "t": _Phone("plosive", None, (0, 0.20, 0, 0, 0), (65, 110), burst="hi"),
    "k": _Phone("plosive", None, (0, 0.22, 0, 0, 0), (70, 115), burst="mid"),
    "b": _Phone("plosive", None, (0.45, 0, 0, 0, 0), (60, 100), burst="flat", voiced=True),
    "d": _Phone("plosive", None, (0.45, 0, 0, 0, 0), (60, 100), burst="hi", voiced=True),
    "g": _Phone("plosive", None, (0.45, 0, 0, 0, 0), (60, 100), burst="mid", voiced=True),
}
_NEUTRAL_FORMANTS = (500.0, 1500.0, 2500.0)
_BANDWIDTHS = (80.0, 110.0, 160.0)  # Hz, F1-F3

# How emotion colours the voice (DESIGN §5: pitch and energy), by emotion name.
# pitch: f0 factor; range: intonation range factor; energy: loudness factor; rate: speed factor;
# open: mouth-opening factor; oq: glottal open quotient (pressed < 0.4 < breathy); breath: noise.
EMOTION_VOICE: dict[str, dict[str, float]] = {
    "neutral": dict(pitch=1.00, range=1.0, energy=1.00, rate=1.00, open=1.00, oq=0.40, breath=0.03),
    "happy": dict(pitch=1.15, range=1.5, energy=1.25, rate=1.08, open=1.00, oq=0.40, breath=0.04),
    "sad": dict(pitch=0.88, range=0.5, energy=0.60, rate=0.85, open=0.85, oq=0.52, breath=0.12),
    "angry": dict(pitch=1.10, range=1.3, energy=1.60, rate=1.10, open=1.10, oq=0.30, breath=0.02),
    "surprised": dict(pitch=1.25, range=1.8, energy=1.20, rate=1.00, open=1.10, oq=0.40, breath=0.05),
}

# ----------------------------------------------------------------------------------------------
# Vocabulary: pseudo-words from a syllable grammar, generated once, deterministically.
# ----------------------------------------------------------------------------------------------

_ONSETS = (tuple((c,) for c in CONSONANTS if c != "y" and c != "w")
           + (("w",), ("y",), ("b", "l"), ("b", "r"), ("p", "l"), ("p", "r"), ("t", "r"), ("d", "r"),
              ("k", "l"), ("k", "r"), ("g", "l"), ("g", "r"), ("f", "l"), ("f", "r"), ("s", "l"),
              ("s", "p"), ("s", "t"), ("s", "k"), ("s", "m"), ("s", "n"), ("s", "w"), ()))
_CODAS = ((), (), (), ("m",), ("n",), ("s",), ("t",), ("k",), ("l",), ("r",), ("d",), ("p",),
          ("n", "d"), ("s", "t"), ("l", "k"), ("sh",), ("th",), ("z",), ("f",))
_VOCAB_SIZE = 400
_VOCAB_SEED = 20251010


def _tokenize(spelling: str) -> list[str]:
    """Split a spelling back into phonemes (digraphs first): the spelling is unambiguous by construction."""
    out, i = [], 0
    while i < len(spelling):
        if spelling[i:i + 2] in ("sh", "th"):
            out.append(spelling[i:i + 2])
            i += 2
        else:
            out.append(spelling[i])
            i += 1
    return out


def _build_vocabulary() -> dict[str, str]:
    rnd = random.Random(_VOCAB_SEED)  # Python's Mersenne Twister: same words on every platform
    words: dict[str, str] = {}
    while len(words) < _VOCAB_SIZE:
        n_syll = rnd.choices((1, 2, 3), weights=(35, 45, 20))[0]
        phones: list[str] = []
        for k in range(n_syll):
            onset = rnd.choice(_ONSETS) if (k == 0 or rnd.random() < 0.9) else ()
            coda = rnd.choice(_CODAS) if k == n_syll - 1 or rnd.random() < 0.25 else ()
            phones += [*onset, rnd.choice(VOWELS), *coda]
        if any(a == b for a, b in zip(phones, phones[1:])):
            continue  # no geminates: "tt" would read as one phoneme
        spelling = "".join(phones)
        if len(phones) < 2 or _tokenize(spelling) != phones or spelling in words:
            continue
        words[spelling] = " ".join(phones)
    return dict(sorted(words.items()))


LEXICON: dict[str, str] = _build_vocabulary()   # word -> space-separated phoneme string
VOCABULARY: tuple[str, ...] = tuple(LEXICON)

# ----------------------------------------------------------------------------------------------
# Utterance: words, phonemes and sentences on a time line.
# ----------------------------------------------------------------------------------------------


@dataclass
class Utterance:
    words: list[str]
    phones: list[tuple[str, float, float]]        # (phoneme, start_s, end_s), silences are gaps
    stress: np.ndarray                            # float [n_phones]: energy factor of each phoneme
    sentences: list[tuple[float, float, float, float, bool]]  # start, end, accent start/end, rising


def utterance(n_frames: int, rng: np.random.Generator, speaking_rate: float,
              emotion: str = "neutral") -> Utterance:
    """Sentences of 3-8 words that fit in `n_frames` frames; only whole words are kept."""
    voice = EMOTION_VOICE[emotion]
    rate = speaking_rate * voice["rate"]
    total = n_frames / TIMING.fps
    t = float(rng.uniform(0.08, 0.6))                    # leading silence
    words: list[str] = []
    phones: list[tuple[str, float, float]] = []
    stress: list[float] = []
    sentences = []
    done = False
    while not done:
        n_words = int(rng.integers(3, 9))
        idx = rng.integers(0, len(VOCABULARY), n_words)
        accent = int(rng.integers(0, n_words))
        start, acc = t, (t, t)
        for w_i, wi in enumerate(idx):
            word = VOCABULARY[int(wi)]
            seq = LEXICON[word].split()
            lo = np.array([ACOUSTICS[p].dur_ms[0] for p in seq])
            hi = np.array([ACOUSTICS[p].dur_ms[1] for p in seq])
            durs = rng.uniform(lo, hi) / 1000.0 / rate
            if w_i == accent:
                durs *= 1.15
            if t + durs.sum() > total - 0.04:
                done = True
                break
            w_start = t
            for p, d in zip(seq, durs):
                phones.append((p, t, t + float(d)))
                stress.append(1.25 if w_i == accent else 1.0)
                t += float(d)
            if w_i == accent:
                acc = (w_start, t)
            words.append(word)
            t += float(rng.uniform(0.04, 0.13)) / rate   # pause between words (closed mouth)
        if t > start + 0.05 and phones and phones[-1][2] > start:
            sentences.append((start, phones[-1][2], acc[0], acc[1], bool(rng.random() < 0.25)))
        t += float(rng.uniform(0.25, 0.7))               # pause between sentences
        if t > total - 0.2:
            done = True
    return Utterance(words, phones, np.asarray(stress, np.float32), sentences)


# ----------------------------------------------------------------------------------------------
# Source-filter synthesis.
# ----------------------------------------------------------------------------------------------

_BLOCK = TIMING.mel_hop  # samples per formant-update block (10 ms)


@functools.lru_cache(maxsize=8)
def _band_sos(sample_rate: int) -> dict[str, np.ndarray]:
    from scipy.signal import butter
    from scipy.signal import sosfilt
    ny = sample_rate / 2.0
    out = {
        "hi": butter(4, [3800.0 / ny, min(7400.0, 0.93 * ny) / ny], "bandpass", output="sos"),
        "mid": butter(3, [1800.0 / ny, 4500.0 / ny], "bandpass", output="sos"),
        "flat": butter(2, [700.0 / ny, min(7000.0, 0.9 * ny) / ny], "bandpass", output="sos"),
        "bg": butter(1, 1200.0 / ny, "lowpass", output="sos"),
    }
    probe = np.random.default_rng(0).standard_normal(sample_rate)   # unit-RMS white noise, 1 s
    for name in ("hi", "mid", "flat"):                             # gain that makes each band unit RMS
        out[name + "_norm"] = float(1.0 / np.sqrt(np.mean(sosfilt(out[name], probe)[256:] ** 2)))
    return out


def _glottal(phase_frac: np.ndarray, oq: float) -> np.ndarray:
    """Rosenberg glottal flow for one period phase in [0, 1): opening over 0.7*oq, closing over 0.3*oq."""
    tp, tn = 0.7 * oq, 0.3 * oq
    g = np.zeros_like(phase_frac)
    rise = phase_frac < tp
    g[rise] = 0.5 * (1.0 - np.cos(np.pi * phase_frac[rise] / tp))
    fall = (~rise) & (phase_frac < tp + tn)
    g[fall] = np.cos(0.5 * np.pi * (phase_frac[fall] - tp) / tn)
    return g


def synthesize(utt: Utterance, n_samples: int, rng: np.random.Generator, f0: float,
               formant_scale: float, emotion: str = "neutral") -> np.ndarray:
    """Source-filter speech for `utt`, float32 [n_samples], exactly zero-input in pauses, peak <= 1."""
    from scipy.ndimage import gaussian_filter1d, uniform_filter1d
    from scipy.signal import lfilter, sosfilt

    sr = TIMING.sample_rate
    voice = EMOTION_VOICE[emotion]
    S = n_samples
    tracks = np.zeros((len(_TRACKS), S), np.float32)      # excitation gains per sample
    nb = -(-S // _BLOCK)
    form = np.tile(np.asarray(_NEUTRAL_FORMANTS, np.float32), (nb, 1))  # (nb, 3) Hz
    voice_i, asp_i = _TRACKS.index("voice"), _TRACKS.index("asp")

    # Per phoneme: excitation gains (with plosive closure / burst / release) and formant targets.
    n_ph = len(utt.phones)
    next_vowel = [None] * n_ph
    nxt = None
    for i in range(n_ph - 1, -1, -1):
        f = ACOUSTICS[utt.phones[i][0]].formants
        if f is not None and ACOUSTICS[utt.phones[i][0]].kind == "vowel":
            nxt = f
        next_vowel[i] = nxt
    for i, (p, t0, t1) in enumerate(utt.phones):
        ac = ACOUSTICS[p]
        a, b = int(round(t0 * sr)), min(int(round(t1 * sr)), S)
        if b <= a:
            continue
        e = float(utt.stress[i])
        if ac.kind == "plosive":
            close = a + int(0.55 * (b - a))
            burst = min(close + int(0.012 * sr), b)
            if ac.voiced:
                tracks[voice_i, a:close] = 0.12 * e                   # voice bar
            tracks[_TRACKS.index(ac.burst), close:burst] = (0.6 if not ac.voiced else 0.4) * e
            for k, g in enumerate(ac.gains):
                if g:
                    tracks[k, burst:b] = g * e
        else:
            for k, g in enumerate(ac.gains):
                if g:
                    tracks[k, a:b] = g * e
        f = ac.formants if ac.formants is not None else (next_vowel[i] or _NEUTRAL_FORMANTS)
        form[a // _BLOCK: -(-b // _BLOCK)] = f
    tracks = uniform_filter1d(tracks, size=int(0.006 * sr), axis=1, mode="constant")  # 6 ms ramps
    form = gaussian_filter1d(form, sigma=1.5, axis=0, mode="nearest") * formant_scale
    form = np.minimum(form, 0.45 * sr)

    # f0 contour (10 ms blocks): declination, an accent per sentence, optional final rise, jitter.
    tb = (np.arange(nb) + 0.5) * _BLOCK / sr
    base = f0 * voice["pitch"]
    rng_ = 0.9 * voice["range"]
    f0b = np.full(nb, base * 0.92)
    for s0, s1, a0, a1, rising in utt.sentences:
        m = (tb >= s0 - 0.05) & (tb <= s1 + 0.05)
        pos = np.clip((tb[m] - s0) / max(s1 - s0, 1e-3), 0.0, 1.0)
        c = 1.0 + rng_ * (0.10 - 0.20 * pos)
        acc = np.clip((tb[m] - a0) / max(a1 - a0, 1e-3), 0.0, 1.0)
        c += rng_ * 0.16 * np.sin(np.pi * acc)
        if rising:
            c += rng_ * 0.3 * np.clip((pos - 0.75) / 0.25, 0.0, 1.0) ** 2
        f0b[m] = base * c
    f0b *= 1.0 + 0.012 * rng.standard_normal(nb)                       # jitter
    f0s = np.interp(np.arange(S) / sr, tb, f0b).astype(np.float64)
    phase = np.cumsum(f0s / sr)
    flow = _glottal((phase % 1.0).astype(np.float32), voice["oq"])
    src = np.diff(flow, prepend=np.float32(0.0)) * (sr / (np.pi * f0s.astype(np.float32)))
    shimmer = 1.0 + 0.06 * rng.standard_normal(nb).astype(np.float32)
    src *= np.interp(np.arange(S, dtype=np.float32) / sr, tb, shimmer).astype(np.float32)

    noise = rng.standard_normal((4, S)).astype(np.float32)
    exc = src * tracks[voice_i] + noise[0] * (tracks[asp_i] + voice["breath"] * tracks[voice_i]) * 0.6
    # Cascade of three resonators (Klatt), as one 6th-order all-pole filter per 10 ms block. Its
    # direct-form state is rebuilt from the last six outputs for each block's coefficients, so
    # formant changes between blocks are seamless.
    bw = np.asarray(_BANDWIDTHS) * np.sqrt(formant_scale)
    r = np.exp(-np.pi * bw / sr)                                        # (3,)
    B = 2.0 * r[None, :] * np.cos(2.0 * np.pi * form.astype(np.float64) / sr)   # (nb, 3)
    C = np.broadcast_to(-(r * r), B.shape)
    gain = np.prod(1.0 - B - C, axis=1)                                 # unity gain at DC
    den = np.ones((nb, 1))
    for k in range(3):                                                  # multiply the polynomials
        sec = np.stack([np.ones(nb), -B[:, k], -C[:, k]], axis=1)
        nxt = np.zeros((nb, den.shape[1] + 2))
        for j in range(3):
            nxt[:, j:j + den.shape[1]] += sec[:, j:j + 1] * den
        den = nxt                                                       # (nb, 7) at the end
    # zi[k] = -sum_m den[k + 1 + m] * y[-1 - m]: the state a block starts from, given past outputs
    hist_mat = np.zeros((nb, 6, 6))
    for k in range(6):
        for m in range(6 - k):
            hist_mat[:, k, m] = -den[:, k + 1 + m]
    y = np.zeros(S + 6)                                                 # 6 samples of history first
    active = np.add.reduceat(np.abs(exc), np.arange(0, S, _BLOCK)) > 0
    exc64 = exc.astype(np.float64)
    for k in range(nb):
        a, b = k * _BLOCK, min((k + 1) * _BLOCK, S)
        hist = y[a:a + 6][::-1]                                         # y[-1], y[-2], ... y[-6]
        if not active[k] and np.abs(hist).max() < 1e-7:
            continue                                                    # silence stays exactly zero
        y[a + 6:b + 6] = lfilter(gain[k:k + 1], den[k], exc64[a:b], zi=hist_mat[k] @ hist)[0]
    y = y[6:]
    # Level: the resonators' gain depends on f0 and the formants, so scale the formant path so its
    # short-term RMS follows the voice + aspiration gains (smoothed over ~20 ms).
    pad = nb * _BLOCK - S
    meas = np.sqrt(np.mean(np.pad(y, (0, pad)).reshape(nb, _BLOCK) ** 2, axis=1))
    want = np.pad(tracks[voice_i] + tracks[asp_i], (0, pad)).reshape(nb, _BLOCK).mean(axis=1)
    num = gaussian_filter1d(want.astype(np.float64), 2.0, mode="constant")
    den = gaussian_filter1d(meas, 2.0, mode="constant")
    fac = np.where(den > 1e-9, num / np.maximum(den, 1e-9), 0.0)
    y = (y * np.interp(np.arange(S) / sr, tb, fac)).astype(np.float32)
    bands = _band_sos(sr)
    for k, name in enumerate(("hi", "mid", "flat"), start=1):
        tr = tracks[_TRACKS.index(name)]
        if tr.any():
            y += sosfilt(bands[name], noise[k]).astype(np.float32) * tr * np.float32(bands[name + "_norm"])
    y *= np.float32(0.1 * voice["energy"])
    peak = float(np.abs(y).max()) if S else 0.0
    if peak > 0.95:
        y *= np.float32(0.95 / peak)
    return y


def background_noise(n_samples: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS room noise: low-passed (brown-ish) noise plus a little white noise and mains hum."""
    from scipy.signal import sosfilt
    sr = TIMING.sample_rate
    w = rng.standard_normal(n_samples)
    n = sosfilt(_band_sos(sr)["bg"], w) + 0.3 * rng.standard_normal(n_samples)
    hum_f = float(rng.choice([50.0, 60.0]))
    n += 0.3 * np.sin(2 * np.pi * hum_f * np.arange(n_samples) / sr + rng.uniform(0, 2 * np.pi))
    return (n / max(float(np.sqrt(np.mean(n * n))), 1e-9)).astype(np.float32)


# ----------------------------------------------------------------------------------------------
# Vocal motion: mouth targets -> co-articulated mouth track at frame rate.
# ----------------------------------------------------------------------------------------------

SUBFRAMES = 4  # mouth targets are sampled 4 times per frame, smoothed, then averaged to frames


def mouth_track(utt: Utterance, n_frames: int, emotion: str = "neutral",
                coarticulation_s: float = 0.03) -> np.ndarray:
    """float32 [n_frames, 5]: opening, width, rounding, teeth, tongue at frame t.

    Targets are sampled at sub-frame times, smoothed with dominance weights (Cohen-Massaro style:
    a bilabial closure wins over its vowel neighbours), and each frame is the mean of its sub-frames
    (so frame t depends on the sound around frame t's centre, offset 0).
    """
    from scipy.ndimage import gaussian_filter1d

    n = n_frames * SUBFRAMES
    ts = (np.arange(n) + 0.5) / (TIMING.fps * SUBFRAMES)
    tgt = np.tile(np.asarray(SILENCE_MOUTH, np.float32), (n, 1))      # (n, 6)
    if utt.phones:
        starts = np.array([p[1] for p in utt.phones])
        ends = np.array([p[2] for p in utt.phones])
        table = np.array([MOUTH_TARGETS[p[0]] for p in utt.phones], np.float32)
        k = np.searchsorted(starts, ts, side="right") - 1
        inside = (k >= 0) & (ts < ends[np.clip(k, 0, None)])
        tgt[inside] = table[k[inside]]
        # louder (stressed) syllables open wider
        tgt[inside, 0] *= np.minimum(utt.stress[k[inside]], 1.15)
    dom = tgt[:, 5:6]
    sigma = coarticulation_s * TIMING.fps * SUBFRAMES
    num = gaussian_filter1d(tgt[:, :5] * dom, sigma, axis=0, mode="nearest")
    den = gaussian_filter1d(dom, sigma, axis=0, mode="nearest")
    mouth = (num / den).reshape(n_frames, SUBFRAMES, 5).mean(axis=1)
    mouth[:, 0] *= EMOTION_VOICE[emotion]["open"]
    return np.clip(mouth, 0.0, 1.0).astype(np.float32)
