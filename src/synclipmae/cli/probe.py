"""Subcommands that fit heads on labelled videos: probe (emotion / action) and vsr (lip reading).

Each command is a parser (`add_NAME`) next to its handler (`cmd_NAME`), which calls one library
function and prints."""
from __future__ import annotations

import sys
from pathlib import Path

from synclipmae.cli.common import UsageError, add_command, add_face_options, load_checkpoint
from synclipmae.config import apply_overrides
from synclipmae.data.datasets import DataError, read_dataset
from synclipmae.data.datasets.grid import GRID_VAL_FRACTION
from synclipmae.models.heads import VSRConfig
from synclipmae.report import write_json
from synclipmae.tasks import vsr
from synclipmae.weights import resolve_head
from synclipmae.tasks.probe import TOKENS, probe_examples


def add_probe(sub) -> None:
    p = add_command(sub, "probe", "emotion / action probe on time-averaged tokens of labelled videos", """
        synclipmae probe --manifest labels.csv --model runs/demo/runs/synclipmae --out runs/probe
        synclipmae probe --dataset ravdess --root data/RAVDESS --model CKPT --out runs/ravdess
        synclipmae probe --dataset crema-d --root data/CREMA-D --model CKPT --tokens z_voc --head mlp
        synclipmae probe --dataset celebv-hq --root data/CelebV-HQ --task action --model CKPT --out runs/cv-action
        # labels.csv: a header row path,label[,split]; multi-label cells 'nod;smile'; without a split
        # column 80/20 by file hash. Writes OUT/probe.json, OUT/confusion.png (docs/usage.md, "Probes")""")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", metavar="CSV", help="CSV with a header row: path,label[,split]")
    src.add_argument("--dataset", choices=["ravdess", "crema-d", "mead", "celebv-hq"],
                     help="read a dataset in its own layout (with --root)")
    p.add_argument("--root", metavar="DIR", help="the dataset's folder (with --dataset)")
    p.add_argument("--task", choices=["emotion", "action"], default=None,
                   help="emotion: single label (default); action: multi-label (celebv-hq, or a manifest)")
    p.add_argument("--model", required=True, metavar="CKPT", help="checkpoint folder or a training run's folder")
    p.add_argument("--tokens", default="z_voc,z_amb", help="tokens averaged over time and concatenated, any of "
                                                           "z_id, z_voc, z_amb, a (default: z_voc,z_amb)")
    p.add_argument("--pooling", choices=["mean", "mean+std", "mean+std+motion"], default="mean",  # features.POOLINGS
                   help="per-file pooling over time: mean (the paper's average, default); +std adds each "
                        "feature's spread, +motion its mean frame-to-frame change (head motion, blink rate)")
    p.add_argument("--head", choices=["linear", "mlp"], default="linear",
                   help="linear: closed-form ridge (default); mlp: one hidden layer trained with AdamW")
    p.add_argument("--classes", metavar="A,B,...", help="the allowed classes, in order (default: those in the data)")
    p.add_argument("--out", default="runs/probe", help="output folder: probe.json, confusion.png (default: runs/probe)")
    p.add_argument("--seed", type=int, default=0, help="seeds the MLP head (default: 0)")
    add_face_options(p)
    p.set_defaults(run=cmd_probe)


def cmd_probe(args) -> int:
    tokens = [t.strip() for t in args.tokens.split(",") if t.strip()]
    if not tokens or any(t not in TOKENS for t in tokens) or len(set(tokens)) != len(tokens):
        raise UsageError(f"--tokens {args.tokens}: comma-separated names from {', '.join(TOKENS)}, each at most once")
    if args.dataset and not args.root:
        raise UsageError(f"--dataset {args.dataset} needs --root DIR (the dataset's folder)")
    if args.manifest and args.root:
        raise UsageError("--root goes with --dataset (a manifest's relative paths are read from its own folder)")
    if args.task == "action" and args.dataset not in (None, "celebv-hq"):
        raise UsageError(f"--task action: {args.dataset} has emotion labels only (actions: celebv-hq or a manifest)")
    classes = [c.strip() for c in args.classes.split(",") if c.strip()] if args.classes is not None else None
    if classes is not None and (not classes or len(set(classes)) != len(classes)):
        raise UsageError(f"--classes {args.classes}: comma-separated class names, each once")
    try:
        if args.manifest:
            source = args.manifest
            multilabel = None if args.task is None else args.task == "action"
            examples = read_dataset("manifest", source, classes=classes, multilabel=multilabel)
        else:
            source = args.root
            kw = {"task": args.task or "emotion"} if args.dataset == "celebv-hq" else {}
            examples = read_dataset(args.dataset, source, classes=classes, **kw)
        if examples.skipped:
            first = examples.skipped[0]
            print(f"synclipmae probe: {len(examples.skipped)} files under {source} skipped (not in the dataset's "
                  f"layout), first: {first['path']}: {first['error']}", file=sys.stderr)
        multilabel = isinstance(examples[0].label, list)
        model, model_name = load_checkpoint(args.model, args.device)
        absent = [t for t in tokens if t != "a" and t not in model.prompt_names]
        if absent:
            raise UsageError(f"--tokens: this model has no {', '.join(absent)} "
                             f"(it has {', '.join(model.prompt_names)}, a)")
        report = probe_examples(examples, model, args.out, tokens=tokens, head=args.head, seed=args.seed,
                                task=args.task or ("action" if multilabel else "emotion"), classes=classes,
                                multilabel=multilabel, source=source, backend=args.backend, model_name=model_name,
                                pooling=args.pooling)
    except DataError as err:
        print(f"synclipmae probe: {err}", file=sys.stderr)
        return 1
    what = f"{report['task']} probe ({args.head} on {'+'.join(tokens)})"
    if multilabel:
        scores = f"mAP {report['map']:.3f} (chance {report['chance_map']:.3f})"
    else:
        scores = (f"accuracy {report['accuracy']:.3f} (chance {report['chance_accuracy']:.3f}), "
                  f"macro-F1 {report['macro_f1']:.3f}")
    failed = len(report["failures"])
    print(f"{what}: {scores} on {report['n_test']} test files ({report['n_train']} train); "
          f"{failed} files failed; {report['path']}")
    return 1 if failed else 0


def add_vsr(sub) -> None:
    p = add_command(sub, "vsr", "lip reading: train or score a CTC head on the tokens of transcribed videos", """
        synclipmae vsr train --dataset grid --root ../shared/data/grid --out runs/vsr-grid --grammar grid \\
            --inputs z_voc+mouth --epochs 50 lr=0.003 head.upsample=1           # the shipped head's recipe
        synclipmae vsr eval --dataset grid --root data/GRID --head runs/vsr-grid --grammar grid --json wer.json
        synclipmae vsr train --dataset lrs3 --root data/LRS3 --model runs/demo/runs/synclipmae --out runs/vsr
        synclipmae vsr train --manifest transcripts.csv --model CKPT --out runs/vsr --epochs 100
        # transcripts.csv: a header row path,label[,split], label = the words spoken.
        # GRID: test = SHA-1 of "sN/NAME" < 0.1, val = [0.1, 0.2), train the rest (docs/usage.md, "Lip reading").
        # WER / CER: word / character errors per reference word / character (0 is perfect).""")
    p.add_argument("action", choices=["train", "eval"])
    p.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="train: fields of VSRTrainConfig, e.g. lr=0.003 "
                                                                     "head.upsample=1 head.dropout=0.2")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--manifest", metavar="CSV", help="CSV with a header row: path,label[,split] (label = transcript)")
    src.add_argument("--dataset", choices=["grid", "lrs3"], help="read GRID's or LRS3's layout (with --root)")
    p.add_argument("--root", metavar="DIR", help="the dataset's folder (with --dataset)")
    p.add_argument("--model", metavar="CKPT", help="the pretrained SyncLipMAE checkpoint, a run's folder or shipped "
                                                   "weights by name (default: train: real-tiny; eval: the encoder "
                                                   "the head names)")
    p.add_argument("--out", default="runs/vsr", help="train: the head's folder (config.json, model.safetensors, "
                                                      "vsr.json; default: runs/vsr)")
    p.add_argument("--head", metavar="DIR", help="eval: a head folder written by 'vsr train', or a shipped head's name")
    p.add_argument("--inputs", choices=vsr.HEAD_INPUTS, default=VSRConfig.inputs,
                   help=f"train: what the head reads per frame (default: {VSRConfig.inputs}; pixels = the grey mouth "
                        "box, no encoder: the baseline)")
    p.add_argument("--epochs", type=int, default=None, help=f"train: passes over the training set (default: "
                                                            f"{vsr.VSRTrainConfig.epochs})")
    p.add_argument("--minutes", type=float, default=0.0, help="train: stop after this many minutes (default: no limit)")
    p.add_argument("--units", default="char", help="train: char (default), words (the closed vocabulary of the "
                                                   "training transcripts, e.g. GRID's 51) or a sentencepiece .model file")
    p.add_argument("--beam", type=int, default=8, help="CTC prefix beam width; 1 = greedy (default: 8)")
    p.add_argument("--grammar", choices=list(vsr.GRAMMARS), help="also score grammar-constrained decoding (grid: GRID's "
                                                             "six word slots)")
    p.add_argument("--json", metavar="OUT", help="write the scores and every transcript here")
    p.add_argument("--seed", type=int, default=0)
    add_face_options(p)
    p.set_defaults(run=cmd_vsr)


def _rates(scores: dict, split: str) -> str:
    line = f"{split} WER {scores['wer']:.3f}, CER {scores['cer']:.3f}"
    if "grammar" in scores:
        line += f" (grammar: WER {scores['grammar']['wer']:.3f}, CER {scores['grammar']['cer']:.3f})"
    return f"{line} on {scores['n']} files"


def cmd_vsr(args) -> int:
    if args.dataset and not args.root:
        raise UsageError(f"--dataset {args.dataset} needs --root DIR (the dataset's folder)")
    if args.action == "eval" and not args.head:
        raise UsageError("vsr eval needs --head DIR (a folder written by 'vsr train', or a shipped head's name)")
    if args.beam < 1 or (args.epochs is not None and args.epochs < 1) or args.minutes < 0:
        raise UsageError("--beam and --epochs must be >= 1, --minutes >= 0")
    tokenizer = None
    if args.units != "char":
        if args.units != "words" and not Path(args.units).is_file():
            raise UsageError(f"--units {args.units}: 'char', 'words' or a sentencepiece .model file")
        if args.grammar:
            raise UsageError("--grammar needs character units (--units char)")
        tokenizer = vsr.SentencePieceTokenizer(args.units) if args.units != "words" else None
    grammar = vsr.SlotGrammar(vsr.GRAMMARS[args.grammar]) if args.grammar else None
    log = lambda m: print(f"synclipmae vsr: {m}", file=sys.stderr)  # noqa: E731
    try:
        if args.manifest:
            examples = read_dataset("manifest", args.manifest, multilabel=False)
        else:
            examples = read_dataset(args.dataset, args.root, **({"val_fraction": GRID_VAL_FRACTION}
                                                                if args.dataset == "grid" else {}))
        head_dir, head_cfg = None, {}
        if args.action == "eval":
            try:
                head_dir = resolve_head(args.head)
                head_cfg = vsr.load_vsr(head_dir)[2]
            except (FileNotFoundError, KeyError, ValueError) as err:
                raise UsageError(f"--head {err}") from None
        inputs = head_cfg["head"].get("inputs", "z_voc") if head_cfg else args.inputs
        model, model_name = (None, None) if inputs == "pixels" else \
            load_checkpoint(args.model or head_cfg.get("encoder"), args.device)  # eval: the head's encoder by default
        if args.action == "train":
            if args.units == "words":  # the closed vocabulary of the training transcripts
                tokenizer = vsr.WordTokenizer.from_texts(ex.label for ex in examples if ex.split in ("train", None))
            cfg = apply_overrides(vsr.VSRTrainConfig(minutes=args.minutes, seed=args.seed), args.overrides)
            cfg.head.inputs = args.inputs
            if args.epochs is not None:
                cfg.epochs = args.epochs
            report = vsr.vsr_train_files(examples, model, args.out, cfg, tokenizer, args.beam, args.backend, log,
                                         model_name, grammar)
        else:
            report = vsr.vsr_eval_files(examples, model, head_dir, args.beam, args.backend, log, grammar)
    except DataError as err:
        print(f"synclipmae vsr: {err}", file=sys.stderr)
        return 1
    if args.json:
        write_json(report, args.json)
    scores = "; ".join(_rates(report[s], s) for s in ("val", "test") if s in report) or "no val or test rows to score"
    where = f"; head: {args.out}" if args.action == "train" else ""
    print(f"lip reading: {scores}; {len(report['failures'])} files failed{where}")
    return 1 if report["failures"] else 0
