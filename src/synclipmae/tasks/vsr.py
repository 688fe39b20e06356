"""Visual speech recognition (lip reading) on the z_voc sequence (DESIGN §2 item 3, §6).

    CharTokenizer / WordTokenizer / SentencePieceTokenizer   text <-> unit ids (0 is the CTC blank)
    train_vsr(features, texts, ...)          a VSRHead trained with CTC on frozen token sequences
    transcribe(head, features, beam=...)     greedy (beam=1) or CTC prefix beam search
    error_rates(refs, hyps)                  {"wer", "cer"} with jiwer: 0 is perfect, 1 is one error
                                             per reference word (or character); can exceed 1
    save_vsr / load_vsr                      a head folder: config.json + model.safetensors

Features are float32 [T, D] per utterance (z_voc of the speaker's face track, 25 fps). Texts are
lowercased; characters outside the tokenizer's alphabet are dropped (counted by `normalise_text`).
"""
from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from synclipmae.config import IMG_SIZE
from synclipmae.data.datasets.grid import GRID_SLOTS
from synclipmae.errors import one_line
from synclipmae.media.decode import MediaError
from synclipmae.media.pipeline import FaceError, iter_face_segments
from synclipmae.models.heads import VSRConfig, VSRHead
from synclipmae.train.loop import Budget, fit
from synclipmae.train.optim import lr_at
from synclipmae.report import write_json
from synclipmae.weights import load_weights, save_weights

ALPHABET = " 'abcdefghijklmnopqrstuvwxyz0123456789"  # default character units
VSR_MIN_LR = 0.05     # default: the schedule's cosine (no warm-up) ends at 5% of VSRTrainConfig.lr
VSR_GRAD_CLIP = 1.0   # default: gradient norm clip
VSR_LOG_EVERY = 50    # default: steps between `log` calls
GRAMMAR_BEAM = 16     # default: the least beam width of grammar-constrained decoding
GRAMMARS = {"grid": GRID_SLOTS}  # --grammar NAME: the word slots of grammar-constrained decoding


def normalise_text(text: str, alphabet: str = ALPHABET) -> str:
    """Lowercase, keep the alphabet's characters, collapse spaces."""
    kept = "".join(c for c in text.lower() if c in alphabet)
    return " ".join(kept.split())


class CharTokenizer:
    """Characters of `alphabet` -> ids 1..len(alphabet); 0 is the CTC blank."""
    kind = "char"

    def __init__(self, alphabet: str = ALPHABET):
        self.alphabet = alphabet
        self.index = {c: i + 1 for i, c in enumerate(alphabet)}

    def __len__(self) -> int:
        return len(self.alphabet)

    def encode(self, text: str) -> list[int]:
        return [self.index[c] for c in normalise_text(text, self.alphabet)]

    def decode(self, ids) -> str:
        return " ".join("".join(self.alphabet[i - 1] for i in ids if i > 0).split())

    def to_dict(self) -> dict:
        return {"kind": self.kind, "alphabet": self.alphabet}


class SentencePieceTokenizer:
    """sentencepiece units (optional: `pip install sentencepiece`); ids shifted by one for the blank."""
    kind = "sentencepiece"

    def __init__(self, model_file: str):
        try:
            import sentencepiece as spm
        except ImportError:
            raise ImportError("sentencepiece units need the sentencepiece package: pip install sentencepiece") from None
        self.model_file = str(model_file)
        self.sp = spm.SentencePieceProcessor(model_file=self.model_file)

    def __len__(self) -> int:
        return self.sp.get_piece_size()

    def encode(self, text: str) -> list[int]:
        return [i + 1 for i in self.sp.encode(normalise_text(text))]

    def decode(self, ids) -> str:
        return self.sp.decode([i - 1 for i in ids if i > 0])

    def to_dict(self) -> dict:
        return {"kind": self.kind, "model_file": self.model_file}


class WordTokenizer:
    """Whole words of a closed vocabulary -> ids 1..len(words); 0 is the CTC blank. Words outside the
    vocabulary are dropped (a closed-vocabulary reader: GRID's 51 words)."""
    kind = "words"

    def __init__(self, words):
        self.words = sorted(set(words))
        self.index = {w: i + 1 for i, w in enumerate(self.words)}

    @classmethod
    def from_texts(cls, texts) -> "WordTokenizer":
        return cls(w for t in texts for w in normalise_text(t).split())

    def __len__(self) -> int:
        return len(self.words)

    def encode(self, text: str) -> list[int]:
        return [self.index[w] for w in normalise_text(text).split() if w in self.index]

    def decode(self, ids) -> str:
        return " ".join(self.words[i - 1] for i in ids if i > 0)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "words": self.words}


def tokenizer_from_dict(d: dict):
    if d.get("kind") == "sentencepiece":
        return SentencePieceTokenizer(d["model_file"])
    return WordTokenizer(d["words"]) if d.get("kind") == "words" else CharTokenizer(d["alphabet"])


# ------------------------------------------------------------------------------------------------ training

@dataclass
class VSRTrainConfig:
    head: VSRConfig = field(default_factory=VSRConfig)
    lr: float = 2e-3             # default: AdamW peak learning rate (cosine to 5% over the budget)
    weight_decay: float = 0.01   # default
    batch_size: int = 16         # default: utterances per step
    epochs: int = 60             # default: passes over the training set (the time budget may stop it first)
    minutes: float = 0.0         # default: 0 = no time budget; > 0 stops after this many minutes
    time_mask: int = 4           # default: SpecAugment-style time masks per utterance (up to 5 frames each)
    seed: int = 0


def _batch(features: list[np.ndarray], targets: list[list[int]], idx) -> tuple:
    xs = [torch.from_numpy(np.asarray(features[i], np.float32)) for i in idx]
    lengths = torch.tensor([len(x) for x in xs])
    x = torch.nn.utils.rnn.pad_sequence(xs, batch_first=True)                 # (B, T, D)
    ys = [torch.tensor(targets[i], dtype=torch.long) for i in idx]
    return x, lengths, torch.cat(ys) if ys else torch.zeros(0, dtype=torch.long), torch.tensor([len(y) for y in ys])


class CTCTraining(nn.Module):
    """The head's training as a module for `train.loop.fit`: forward(batch) -> {"loss": CTC loss} of
    the batch's (time-masked) sequences against their unit ids."""

    def __init__(self, head: VSRHead):
        super().__init__()
        self.head = head

    def forward(self, batch: dict) -> dict:
        logp, out_len = self.head(batch["x"], batch["lengths"])
        loss = F.ctc_loss(logp.transpose(0, 1), batch["y"], out_len, batch["y_len"], blank=0, zero_infinity=True)
        return {"loss": loss}


def train_vsr(features: list[np.ndarray], texts: list[str], cfg: VSRTrainConfig | None = None, tokenizer=None,
              progress: bool = False, log=None) -> tuple[VSRHead, object]:
    """Train a VSRHead with CTC on frozen features [T_i, D] and their transcripts, through
    `train.loop.fit`. Returns (head, tokenizer)."""
    cfg = cfg or VSRTrainConfig()
    if not features:
        raise ValueError("no training utterances")
    tokenizer = tokenizer or CharTokenizer()
    targets = [tokenizer.encode(t) for t in texts]
    g = torch.Generator().manual_seed(cfg.seed)
    torch.manual_seed(cfg.seed)
    head = VSRHead(features[0].shape[1], len(tokenizer), cfg.head)
    allf = np.concatenate(features).astype(np.float64)
    head.feat_mean.copy_(torch.from_numpy(allf.mean(0)).float())
    head.feat_std.copy_(torch.from_numpy(allf.std(0) + 1e-5).float())
    opt = torch.optim.AdamW(head.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    steps_per_epoch = math.ceil(len(features) / cfg.batch_size)
    batches = (idx for _ in range(cfg.epochs) for idx in torch.randperm(len(features), generator=g).split(cfg.batch_size))

    def sample(step: int) -> dict:
        idx = next(batches).tolist()
        x, lengths, y, y_len = _batch(features, targets, idx)
        return {"x": _time_mask(x, lengths, cfg.time_mask, g), "lengths": lengths, "y": y, "y_len": y_len,
                "source": [f"utterance {i}" for i in idx]}

    def on_log(step: int, metrics: dict) -> None:
        if log is not None and step % VSR_LOG_EVERY == 0:
            log({"step": step, "ctc_loss": metrics["loss"]})

    budget = Budget(steps=steps_per_epoch * cfg.epochs, seconds=60 * cfg.minutes, ahead=True)
    fit(CTCTraining(head), opt, sample, budget, lambda p: lr_at(p, cfg.lr, 0.0, VSR_MIN_LR * cfg.lr), VSR_GRAD_CLIP,
        log_every=1, on_log=on_log, last_good=False, bar={"desc": "vsr train", "disable": not progress, "leave": False})
    return head.eval(), tokenizer


def _time_mask(x: torch.Tensor, lengths: torch.Tensor, n: int, g: torch.Generator) -> torch.Tensor:
    """Replace up to n random stretches of 1-5 frames of each sequence by the mean feature (zeros after
    the head's standardisation would be its mean; here the batch's mean is used)."""
    if n <= 0:
        return x
    x = x.clone()
    fill = x.flatten(0, 1).mean(0)
    for b, L in enumerate(lengths.tolist()):
        for _ in range(n):
            w = int(torch.randint(1, 6, (1,), generator=g))
            if L > w:
                t0 = int(torch.randint(0, L - w, (1,), generator=g))
                x[b, t0:t0 + w] = fill
    return x


# ------------------------------------------------------------------------------------------------ decoding

def _logaddexp(a: float, b: float) -> float:
    if a == -math.inf:
        return b
    if b == -math.inf:
        return a
    m = max(a, b)
    return m + math.log(math.exp(a - m) + math.exp(b - m))


def ctc_greedy(logp: np.ndarray) -> list[int]:
    """logp [T, V+1] -> unit ids: best path, repeats merged, blanks removed."""
    best = logp.argmax(1)
    return [int(c) for i, c in enumerate(best) if c != 0 and (i == 0 or c != best[i - 1])]


class SlotGrammar:
    """Sentences of exactly one word from each slot, in order (GRID: `GRID_SLOTS`). Characters only:
    `allowed(text)` is the set of characters that may follow the partial sentence `text`, and
    `complete(text)` says whether `text` is a whole sentence."""

    def __init__(self, slots):
        self.slots = [tuple(words) for words in slots]
        self.prefixes = [{w[:i] for w in words for i in range(len(w))} for words in self.slots]

    def allowed(self, text: str) -> set[str]:
        words = text.split(" ")
        slot, partial = len(words) - 1, words[-1]
        if slot >= len(self.slots) or any(w not in self.slots[i] for i, w in enumerate(words[:-1])):
            return set()
        out = {w[len(partial)] for w in self.slots[slot] if len(w) > len(partial) and w.startswith(partial)}
        if partial in self.slots[slot] and slot + 1 < len(self.slots):
            out.add(" ")
        return out

    def complete(self, text: str) -> bool:
        words = text.split(" ")
        return len(words) == len(self.slots) and all(w in self.slots[i] for i, w in enumerate(words))


def ctc_beam_search(logp: np.ndarray, beam: int = 8, prune: float = -8.0, grammar: SlotGrammar | None = None,
                    alphabet: str = ALPHABET) -> list[int]:
    """CTC prefix beam search (no language model): logp [T, V+1] -> unit ids of the most probable
    labelling among the `beam` kept prefixes. Units with log-prob < `prune` at a step are skipped.
    With a `grammar` (character units of `alphabet`), a prefix only grows by characters the grammar
    allows after it (whatever its log-prob), and the answer is the most probable complete sentence (the
    most probable prefix when no kept prefix is complete)."""
    beams = {(): (0.0, -math.inf)}  # prefix -> (log p ending in blank, log p ending in non-blank)
    allowed_cache: dict = {}

    def allowed(prefix: tuple) -> set[int] | None:
        if grammar is None:
            return None
        if prefix not in allowed_cache:
            text = "".join(alphabet[i - 1] for i in prefix)
            allowed_cache[prefix] = {alphabet.index(c) + 1 for c in grammar.allowed(text) if c in alphabet}
        return allowed_cache[prefix]

    for t in range(logp.shape[0]):
        row = logp[t]
        cands = np.flatnonzero(row > prune)
        nxt: dict = {}
        for prefix, (pb, pnb) in beams.items():
            total = _logaddexp(pb, pnb)
            ok = allowed(prefix)
            last = prefix[-1] if prefix else None
            # with a grammar the blank, the last unit (held) and every allowed unit stay candidates, so
            # the beam never empties
            for c in (cands if ok is None else sorted({0, *ok, *([last] if last else [])})):
                p = float(row[c])
                if c == 0:
                    b, nb = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (_logaddexp(b, total + p), nb)
                    continue
                if c == last:  # a repeat without a blank between stays the same prefix
                    b, nb = nxt.get(prefix, (-math.inf, -math.inf))
                    nxt[prefix] = (b, _logaddexp(nb, pnb + p))
                if ok is not None and c not in ok:
                    continue
                new = prefix + (int(c),)
                b, nb = nxt.get(new, (-math.inf, -math.inf))
                nxt[new] = (b, _logaddexp(nb, (pb if c == last else total) + p))
        beams = dict(sorted(nxt.items(), key=lambda kv: -_logaddexp(*kv[1]))[:beam])
    ranked = sorted(beams.items(), key=lambda kv: -_logaddexp(*kv[1]))
    if grammar is not None:
        done = [kv for kv in ranked if grammar.complete("".join(alphabet[i - 1] for i in kv[0]))]
        ranked = done or ranked
    return list(ranked[0][0])


def snap_to_lexicon(text: str, lexicon) -> str:
    """Replace each word by the closest word of `lexicon` (Levenshtein distance; ties: first in order)."""
    from rapidfuzz import process
    from rapidfuzz.distance import Levenshtein

    words = list(lexicon)
    return " ".join(process.extractOne(w, words, scorer=Levenshtein.distance)[0] for w in text.split())


@torch.no_grad()
def transcribe(head: VSRHead, tokenizer, features: list[np.ndarray], beam: int = 1, lexicon=None,
               grammar: SlotGrammar | None = None, batch_size: int = 32) -> list[str]:
    """Texts for feature sequences [T_i, D]: greedy (beam=1) or prefix beam search; with `lexicon`
    (a closed vocabulary) every decoded word is replaced by its nearest lexicon word; with `grammar`
    (character units only) the beam search keeps to the grammar's sentences."""
    if grammar is not None and not isinstance(tokenizer, CharTokenizer):
        raise ValueError("grammar-constrained decoding needs character units")
    head.eval()
    out = []
    for i in range(0, len(features), batch_size):
        idx = list(range(i, min(i + batch_size, len(features))))
        x, lengths, _, _ = _batch(features, [[] for _ in features], idx)
        logp, out_len = head(x, lengths)
        for lp, n in zip(logp.float().numpy(), out_len.tolist()):
            if grammar is not None:
                ids = ctc_beam_search(lp[:n], beam, grammar=grammar, alphabet=tokenizer.alphabet)
            else:
                ids = ctc_greedy(lp[:n]) if beam <= 1 else ctc_beam_search(lp[:n], beam)
            text = tokenizer.decode(ids)
            out.append(snap_to_lexicon(text, lexicon) if lexicon is not None and text else text)
    return out


def error_rates(refs: list[str], hyps: list[str]) -> dict:
    """{"wer", "cer"} over the corpus (jiwer; errors / reference length)."""
    import jiwer

    refs = [normalise_text(r) for r in refs]
    hyps = [normalise_text(h) for h in hyps]
    keep = [i for i, r in enumerate(refs) if r]
    if not keep:
        raise ValueError("every reference transcript is empty")
    refs, hyps = [refs[i] for i in keep], [hyps[i] for i in keep]
    return {"wer": float(jiwer.wer(refs, hyps)), "cer": float(jiwer.cer(refs, hyps))}


# ------------------------------------------------------------------------------------------------ files

def save_vsr(head: VSRHead, tokenizer, directory, extra: dict | None = None) -> Path:
    cfg = {"in_dim": head.inp.in_features, "head": asdict(head.cfg), "tokenizer": tokenizer.to_dict(), **(extra or {})}
    return save_weights(directory, json.dumps(cfg, indent=1) + "\n", head)


def load_vsr(directory) -> tuple[VSRHead, object, dict]:
    """(head, tokenizer, config dict) from a folder written by save_vsr."""
    d = Path(directory)
    if not (d / "config.json").is_file() or not (d / "model.safetensors").is_file():
        raise FileNotFoundError(f"{d} is not a lip-reading head (needs config.json and model.safetensors)")
    cfg = json.loads((d / "config.json").read_text())
    tokenizer = tokenizer_from_dict(cfg["tokenizer"])
    head = VSRHead(cfg["in_dim"], len(tokenizer), VSRConfig(**cfg["head"]))
    return load_weights(head, d).eval(), tokenizer, cfg


# ------------------------------------------------------------------------------------------------ files in, report out

HEAD_INPUTS = ("z_voc", "z_voc+mouth", "pixels")
MOUTH_BOX = (0.5, 0.92, 0.25, 0.75)  # default: the pixel baseline's box (top, bottom, left, right) as shares of
                                     # the crop: CROP_FRAMING puts the mouth there (a 40 x 48 box at 96 px)
MOUTH_POOL = 2                       # default: the pixel baseline averages 2 x 2 grey pixels (480 values a frame)


def mouth_pixels(crops: np.ndarray) -> np.ndarray:
    """The pixel baseline's input: uint8 crops [N, S, S, 3] -> grey mouth box, MOUTH_POOL-averaged, in
    [0, 1]: float32 [N, F]."""
    S, k = crops.shape[1], MOUTH_POOL
    top, bottom, left, right = (int(f * S) for f in MOUTH_BOX)
    h, w = (bottom - top) // k * k, (right - left) // k * k
    grey = crops[:, top:top + h, left:left + w].astype(np.float32).mean(-1) / 255.0
    return grey.reshape(len(crops), h // k, k, w // k, k).mean((2, 4)).reshape(len(crops), -1)


@torch.no_grad()
def head_features(model, crops: np.ndarray, inputs: str = "z_voc", chunk: int = 256) -> np.ndarray:
    """A track's per-frame head inputs float32 [N, F] from its crops uint8 [N, S, S, 3] (`HEAD_INPUTS`):
    z_voc (the vocal-motion prompt token), z_voc+mouth (with the encoder's output tokens of the mouth
    patches that z_voc's view keeps, `model.mouth_patches`), or pixels (`mouth_pixels`, no model)."""
    if inputs not in HEAD_INPUTS:
        raise ValueError(f"head inputs must be one of {', '.join(HEAD_INPUTS)}, got {inputs!r}")
    if inputs == "pixels":
        return mouth_pixels(crops)
    device = next(model.parameters()).device
    view = model.motion_patches()
    view = torch.arange(model.num_patches) if view is None else view
    mouth = model.mouth_patches() if inputs == "z_voc+mouth" else None
    if inputs == "z_voc+mouth" and mouth is None:
        raise ValueError("z_voc+mouth needs a trained encoder (its mouth_counts say where the mouth is)")
    picked = None if mouth is None else torch.nonzero(torch.isin(view, mouth)).flatten().to(device)
    out = []
    for i in range(0, len(crops), chunk):
        x = model.input_patches(model.to_unit(torch.from_numpy(np.ascontiguousarray(crops[i:i + chunk])).to(device)))
        tokens = model.encode_patches(x, view.to(device)[None].expand(x.shape[0], -1))
        parts = [tokens["z_voc"]] + ([] if picked is None else [tokens["patches"][:, picked].flatten(1)])
        out.append(torch.cat(parts, 1).float().cpu())
    return torch.cat(out).numpy() if out else np.zeros((0, 0), np.float32)


def file_crops(examples, size: int, backend: str = "auto", progress: bool = True, log=None) -> tuple[list, list]:
    """The longest face track's crops uint8 [N, size, size, 3] of each example's video (decode -> faces
    -> crops, as `sync` reads). Returns (kept [(example, crops)], failures [{"path", "error"}])."""
    kept, failures = [], []
    for ex in tqdm(examples, desc="faces", unit="file", disable=not progress, leave=False):
        try:
            tracks = [tc for seg in iter_face_segments(ex.path, size, need_audio=False, backend=backend)
                      for tc in seg.tracks]
            if not tracks:
                raise FaceError(f"{Path(ex.path).name}: no face found")
            kept.append((ex, max(tracks, key=len).crops))
        except (MediaError, FaceError) as err:
            failures.append({"path": str(ex.path), "error": one_line(err)})
            if log is not None:
                log(failures[-1]["error"])
    return kept, failures


def file_features(model, kept: list, inputs: str, progress: bool = True) -> list:
    """[(example, crops)] -> [(example, head_features)] with a progress bar."""
    return [(ex, head_features(model, c, inputs))
            for ex, c in tqdm(kept, desc=f"tokens ({inputs})", unit="file", disable=not progress, leave=False)]


def split_rows(rows: list) -> dict:
    """[(example, x)] -> {"train", "val", "test": [(example, x)]}; rows without a split train."""
    out = {"train": [], "val": [], "test": []}
    for ex, x in rows:
        out[ex.split if ex.split in out else "train"].append((ex, x))
    return out


def score_rows(head, tok, rows: list, beam: int = 8, grammar: SlotGrammar | None = None) -> dict:
    """WER / CER of a head on [(example, features)]: plain decoding (`beam`; 1 = greedy) and, with a
    grammar, grammar-constrained decoding; with every transcript."""
    refs = [ex.label for ex, _ in rows]
    feats = [f for _, f in rows]
    hyps = transcribe(head, tok, feats, beam=beam)
    out = {**error_rates(refs, hyps), "beam": beam, "n": len(rows)}
    constrained = transcribe(head, tok, feats, beam=max(beam, GRAMMAR_BEAM), grammar=grammar) if grammar else None
    if constrained is not None:
        out["grammar"] = error_rates(refs, constrained)
    out["utterances"] = [{"path": str(ex.path), "reference": normalise_text(r), "hypothesis": h,
                          **({"grammar": constrained[i]} if constrained else {})}
                         for i, ((ex, _), r, h) in enumerate(zip(rows, refs, hyps))]
    return out


def fit_and_score(rows: dict, cfg: VSRTrainConfig, tokenizer=None, beam: int = 8, grammar: SlotGrammar | None = None,
                  out_dir=None, encoder: str | None = None) -> dict:
    """Train a head on rows["train"] (`split_rows`), save it in out_dir when given (with the name of
    its `encoder`) and score the "val" and "test" rows there are. Returns {"inputs", "n_train",
    "train_s", "head" (the folder, when saved), "val", "test"}."""
    if not rows["train"]:
        raise ValueError("no training utterance could be read (see the failures above)")
    started = time.perf_counter()
    head, tok = train_vsr([f for _, f in rows["train"]], [ex.label for ex, _ in rows["train"]], cfg, tokenizer,
                          progress=True)
    out = {"inputs": cfg.head.inputs, "n_train": len(rows["train"]), "train_s": round(time.perf_counter() - started, 1)}
    if out_dir is not None:
        out["head"] = str(save_vsr(head, tok, out_dir, extra={"encoder": encoder}))
    for split in ("val", "test"):
        if rows[split]:
            out[split] = score_rows(head, tok, rows[split], beam, grammar)
    return out


def vsr_train_files(examples, model, out_dir, cfg: VSRTrainConfig | None = None, tokenizer=None, beam: int = 8,
                    backend: str = "auto", log=None, model_name: str | None = None,
                    grammar: SlotGrammar | None = None) -> dict:
    """Train a lip-reading head on the "train" rows (all rows when none has a split), save it in
    out_dir and score the "val" and "test" rows there are. Writes out_dir/vsr.json; returns it."""
    cfg = cfg or VSRTrainConfig()
    size = model.cfg.model.img_size if model is not None else IMG_SIZE
    kept, failures = file_crops(examples, size, backend, log=log)
    rows = split_rows(file_features(model, kept, cfg.head.inputs))
    encoder = model_name if cfg.head.inputs != "pixels" else None
    report = {**fit_and_score(rows, cfg, tokenizer, beam, grammar, out_dir, encoder), "failures": failures}
    write_json(report, Path(out_dir) / "vsr.json")
    return report


def vsr_eval_files(examples, model, head_dir, beam: int = 8, backend: str = "auto", log=None,
                   grammar: SlotGrammar | None = None) -> dict:
    """Score a saved head on the "test" rows (all rows when none has a split)."""
    head, tok, _ = load_vsr(head_dir)
    kept, failures = file_crops(examples, model.cfg.model.img_size if model is not None else IMG_SIZE, backend, log=log)
    rows = split_rows(file_features(model, kept, head.cfg.inputs))
    test = rows["test"] or rows["train"] + rows["val"]
    if not test:
        raise ValueError("no test utterance could be read (see the failures above)")
    return {"head": str(head_dir), "inputs": head.cfg.inputs, "failures": failures,
            "test": score_rows(head, tok, test, beam, grammar)}
