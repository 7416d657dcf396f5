"""What a smoke run of a profile runs: one run config per experiment x method (first seed), the
data it reads, and the full run's schedule that the measurements are projected onto.

A smoke run config is the profile's run config (mat.profiles.run_config) with only these changed:
- train: `steps` steps (max_steps), one evaluation at the end over `eval_batches` batches per split,
  a checkpoint at step `steps - 1` (the worker interrupts there and resumes), train logs every step;
- optim: a warm-up longer than the smoke is cut to `steps - 1` (the schedule refuses a longer one);
- method: MAT and MAT-prune evaluate at epoch 0 (start_epoch 0; MAT-prune also prunes there,
  prune_epoch 0), so their mNTK, Eq. 4-6 decision and pruning run within the few steps; SNIP
  measures its sensitivity at epoch 0 anyway; a logged mNTK (ntk.log_every, Figures 1-3) is logged
  at epoch 0 anyway;
- data: the prepared dataset under data/ when it verifies, else a generated stand-in (tiny-text in
  WikiText's layout, tiny-images in CIFAR-10's archive format) at the same sequence length and image
  shape, with the model's vocabulary kept at the profile's size (`pad_vocab`);
- `reduce`: explicit reductions asked on the command line (e.g. ntk.samples for a CPU), of every
  run or of one experiment's runs, recorded.
Model sizes, batch size, sequence length, ntk.samples, chunk size and ntk.memory_gb are the profile's.
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mat import profiles, schedule
from mat.policies.config import parse_method_config

# Stand-in sizes: enough for the mNTK's S samples, the steps and a few evaluation batches at any
# profile's sequence length (words; a word is at least one WordPiece token).
STANDIN_SEQUENCES = 1024
STANDIN_EVAL_SEQUENCES = 256
STANDIN_IMAGES = (2048, 2000)  # train, test
# The real evaluation splits, to project evaluation time when a stand-in is used (Merity et al.
# 2016, Table 1: words; CIFAR-10: test images).
EVAL_WORDS = {"wikitext2": {"valid": 217_646, "test": 245_569}, "wikitext103": {"valid": 217_646, "test": 245_569}}
EVAL_IMAGES = {"cifar10": {"test": 10_000}}


@dataclass
class SmokeRun:
    experiment: str
    method: str
    seed: int
    full: dict  # the profile's run config, unchanged (the projection reads its schedule)
    config: dict  # the smoke run config the worker trains
    data: str  # which data: "real: data/X" or "stand-in: ..."
    pad_vocab: int | None  # model vocabulary to keep when the stand-in's tokenizer has fewer entries
    reduced: list[str] = field(default_factory=list)  # reductions from the profile's numbers


def seeds_of(profile: dict, experiment: str) -> list[int]:
    return [int(s) for s in profile["experiments"][experiment].get("seeds", profile["seeds"])]


def smoke_overrides(cfg: dict, steps: int, eval_batches: int) -> dict:
    """The profile's run config changed only as the module docstring says (train/method/ntk keys)."""
    if steps < 2:
        raise ValueError(f"smoke: steps must be at least 2 (a checkpoint at step steps-1, then a resume), got {steps}")
    out = copy.deepcopy(cfg)
    t = out.setdefault("train", {})
    t.update(max_steps=steps, epochs=None, eval_every=steps, eval_batches=eval_batches,
             checkpoint_every=steps - 1, log_every=1)
    m = out["method"]
    if schedule.on_mat_schedule(m):
        m["start_epoch"] = 0
    if hasattr(parse_method_config(m), "prune_epoch"):
        m["prune_epoch"] = 0
    o = out.get("optim", {})
    if int(o.get("warmup_steps") or 0) >= steps:  # the schedule refuses a warm-up as long as the run
        o["warmup_steps"] = steps - 1
    ntk = out.setdefault("ntk", {})
    if ntk.get("log_every") is not None:
        ntk["log_every"] = 1
    return out


def _verified(folder: Path, name: str) -> bool:
    from mat.data import DataError
    from mat.data.check import check_for_training

    if not (folder / "mat-data.json").is_file():
        return False
    try:
        check_for_training(folder, name)
    except (DataError, OSError):
        return False
    return True


def choose_data(cfg: dict, standin_root: Path, request=None) -> tuple[dict, str, int | None]:
    """(config, which data, pad_vocab): the real dataset when it is prepared and verifies under its
    data.dir, else a generated stand-in of the same format (made once per root, then reused).
    A generated dataset (tiny-*) that is not prepared is generated as the profile asks (`request`,
    mat.data.request) into the smoke folder."""
    from mat.data import acquire
    from mat.train.run_config import TEXT_DATASETS

    data = cfg["data"]
    name, folder = data["name"], Path(data.get("dir") or f"data/{data['name']}")
    if _verified(folder, name):
        return cfg, f"real: {folder}", None
    if name.startswith("tiny-"):
        out = copy.deepcopy(cfg)
        where = standin_root / name
        kw = {"seed": request.seed, "size": request.size, "eval_size": request.eval_size} if request else {}
        acquire.get(name, where, **kw)
        out["data"]["dir"] = str(where)
        return out, f"generated: {name} as the profile asks ({folder} not prepared)", None
    out = copy.deepcopy(cfg)
    text = name in TEXT_DATASETS
    if text:
        seq = int(data.get("seq_len", 64))
        where = standin_root / f"tiny-text-seq{seq}"
        acquire.get("tiny-text", where, seed=0, size=STANDIN_SEQUENCES * seq, eval_size=STANDIN_EVAL_SEQUENCES * seq)
        out["data"].update(name="tiny-text", dir=str(where))
        vocab = int(data.get("vocab_size", 2000))
        return out, f"stand-in: generated tiny-text in {name}'s layout, seq {seq}, vocab {vocab} ({folder} not prepared)", vocab
    where = standin_root / "tiny-images"
    acquire.get("tiny-images", where, seed=0, size=STANDIN_IMAGES[0], eval_size=STANDIN_IMAGES[1])
    out["data"].update(name="tiny-images", dir=str(where))
    return out, f"stand-in: generated tiny-images in {name}'s archive format, 3x32x32 ({folder} not prepared)", None


def plan(profile: dict, out: Path, steps: int = 3, eval_batches: int = 2, experiments: list[str] | None = None,
         methods: list[str] | None = None, reduce: dict[str, Any] | None = None, data: bool = True) -> list[SmokeRun]:
    """The smoke runs of a profile, in the profile's order. `reduce`: KEY.PATH -> value applied to
    every smoke config (e.g. {"ntk.samples": 8}), or EXPERIMENT:KEY.PATH -> value applied to that
    experiment's runs only (e.g. {"table7_large:train.batch_size": 4}); each change from the profile
    is recorded. `data=False` leaves the data unchosen (nothing generated; for listing runs, not
    running them)."""
    from mat.data import request as data_request
    from mat.train.run_config import apply_overrides

    reductions = []  # (experiment or "" for every run, key, value)
    for scoped, value in (reduce or {}).items():
        scope, _, key = scoped.rpartition(":")
        if scope and scope not in profile["experiments"]:
            raise ValueError(f"reduce {scoped!r}: profile {profile['profile']!r} has no experiment {scope!r} "
                             f"(it has {', '.join(profile['experiments'])})")
        reductions.append((scope, key, value))
    requests = {ds: data_request.from_profile(f"profile {profile['profile']!r}: datasets.{ds}", entry)
                for ds, entry in profile["datasets"].items()}
    runs = []
    for exp_name, exp in profile["experiments"].items():
        if experiments and exp_name not in experiments:
            continue
        for method in exp["methods"]:
            if methods and method not in methods:
                continue
            seed = seeds_of(profile, exp_name)[0]
            full = profiles.run_config(profile, exp_name, method, seed)
            cfg = smoke_overrides(full, steps, eval_batches)
            reduced = []
            for scope, key, value in reductions:
                before = config_value(cfg, key)
                if scope in ("", exp_name) and before != value:
                    cfg = apply_overrides(cfg, [f"{key}={value}"])
                    reduced.append(f"{key} {before}->{value}")
            ds = exp["run"].get("data", {}).get("dataset")
            cfg, used, pad = choose_data(cfg, out / "data", requests.get(ds)) if data else (cfg, "", None)
            runs.append(SmokeRun(exp_name, method, seed, full, cfg, used, pad, reduced))
    return runs


def config_value(cfg: dict, key: str):
    """The value at KEY.PATH of a run config, or None where a step is missing."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            return None
        node = node[part]
    return node


# ----------------------------------------------------------------------------- the full run's schedule
@dataclass
class FullSchedule:
    """What the full run does, counted from its config and its data's size."""

    steps: int
    steps_per_epoch: int
    evaluations: int
    eval_batches: int  # batches of one evaluation, all splits together
    measurements: int  # epochs whose start measures (mNTK / SNIP)
    checkpoints: int


def _eval_sizes(cfg: dict) -> dict[str, int]:
    """Examples per evaluation split of the REAL dataset (estimated when it is not prepared)."""
    data = cfg["data"]
    name = data["name"]
    if name in EVAL_IMAGES:
        return dict(EVAL_IMAGES[name])
    words = EVAL_WORDS.get(name, {})
    seq = int(data.get("seq_len", 64))
    return {s: int(w * schedule.TOKENS_PER_WORD // (seq - 1)) for s, w in words.items()}


def full_schedule(full: dict, n_train: int | None = None, eval_sizes: dict[str, int] | None = None) -> FullSchedule:
    """The full run's counts. `n_train` / `eval_sizes`: the real data's sizes when it was loaded;
    otherwise estimated from the documented sizes (mat.schedule.train_size, EVAL_WORDS)."""
    from mat.train.run_config import validate

    cfg = validate(copy.deepcopy(full), model_checks=False)
    t, ntk = cfg["train"], cfg["ntk"]
    n = n_train or schedule.train_size(cfg["data"])
    if n is None:
        raise ValueError(f"{cfg['name']}: the training set's size is unknown (data {cfg['data']['name']!r})")
    spe = math.ceil(n / t["batch_size"])
    steps = int(t["max_steps"]) if t["max_steps"] is not None else int(t["epochs"]) * spe
    evaluations = steps // t["eval_every"] + (1 if steps % t["eval_every"] else 0)
    sizes = eval_sizes or _eval_sizes(cfg)
    per_split = [math.ceil(v / t["eval_batch_size"]) for v in sizes.values()]
    if t["eval_batches"] is not None:
        per_split = [min(b, t["eval_batches"]) for b in per_split]
    epochs = math.ceil(steps / spe)
    method = cfg["method"]
    wanted: set[int] = set()
    if schedule.on_mat_schedule(method):
        m = parse_method_config(method)
        wanted |= set(schedule.evaluation_epochs(m.start_epoch, m.interval, epochs))
        if getattr(m, "prune_epoch", None) is not None and m.prune_epoch < epochs:
            wanted.add(m.prune_epoch)
    if method["name"] == "snip":
        wanted.add(0)
    if ntk["log_every"] is not None:
        wanted |= set(range(0, epochs, int(ntk["log_every"])))
    every = t["checkpoint_every"]
    checkpoints = (steps - 1) // every if every else 0
    return FullSchedule(steps, spe, evaluations, sum(per_split), len(wanted), checkpoints)
