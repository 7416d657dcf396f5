"""Figure 3 (Section 2.2): the overfitting case -- training and validation loss, and each layer's
mNTK lambda_max, over epochs, with the onset of overfitting marked.

The x axis is epochs trained: step / steps_per_epoch (a loss logged at step t, an mNTK measured at
the start of epoch e = after e epochs). Curves are means over the experiment's seeds at the steps
every seed logged (seeds log at the same steps: same schedule, same data).

Onset of overfitting (`overfitting_onset`): the evaluation with the lowest mean validation loss,
provided that it is not the last evaluation (the validation loss is never lower afterwards: it
"rises"; the earliest evaluation wins ties) and that the training loss at the last evaluation is lower than at it (the
training loss "falls"); the training loss at an evaluation is the mean of the training-loss rows
logged since the previous evaluation. Otherwise there is no onset within the run.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mat.report.figure import Figure, finish, style
from mat.report.labels import profile_caption
from mat.report.run_logs import load_runs, read_mntk
from mat.report.runs import ReportInputError, RunMetrics

NO_ONSET = "no overfitting onset within the run"


@dataclass(frozen=True)
class Onset:
    epoch: float | None  # epochs trained at the onset evaluation; None: no onset
    step: int | None
    valid_loss: float | None
    reason: str  # why there is (no) onset, in words


def train_loss_at_evaluations(train: pd.DataFrame, valid: pd.DataFrame) -> pd.Series:
    """Mean training loss of the rows logged in (previous evaluation, this evaluation], per evaluation."""
    out, prev = [], -np.inf
    for step in valid["step"]:
        rows = train[(train["step"] > prev) & (train["step"] <= step)]
        out.append(float(rows["loss"].mean()) if len(rows) else np.nan)
        prev = step
    return pd.Series(out, index=valid.index)


def overfitting_onset(steps, valid_loss, train_loss, steps_per_epoch: float) -> Onset:
    """See the module docstring. Inputs: one value per evaluation, in step order."""
    steps, v, t = np.asarray(steps), np.asarray(valid_loss, float), np.asarray(train_loss, float)
    if steps.size == 0:
        raise ReportInputError("overfitting onset: no evaluations")
    i = int(np.nanargmin(v))  # the earliest on ties
    if i == steps.size - 1:
        return Onset(None, None, None, f"{NO_ONSET} (the validation loss is lowest at the last evaluation)")
    if not (np.isfinite(t[-1]) and np.isfinite(t[i]) and t[-1] < t[i]):
        return Onset(None, None, None, f"{NO_ONSET} (the validation loss rises after step {int(steps[i])}, "
                                       "but the training loss does not fall)")
    e = float(steps[i]) / steps_per_epoch
    return Onset(e, int(steps[i]), float(v[i]),
                 f"onset after {e:.3g} epochs (step {int(steps[i])}): validation loss lowest there, never lower at a later "
                 f"evaluation, training loss {t[i]:.3f} -> {t[-1]:.3f}")


def _steps_per_epoch(run: RunMetrics) -> int:
    import json

    try:
        spe = json.loads((run.dir / "summary.json").read_text()).get("steps_per_epoch")
    except (OSError, json.JSONDecodeError, AttributeError) as exc:
        raise ReportInputError(f"{run.dir / 'summary.json'}: unreadable: {exc}") from exc
    if not isinstance(spe, int) or spe < 1:
        raise ReportInputError(f"{run.dir / 'summary.json'}: key 'steps_per_epoch' is {spe!r}; expected a positive integer")
    return spe


def _mean_over_seeds(frames: list[pd.DataFrame], keys: list[str], value: str) -> pd.DataFrame:
    """Mean of `value` over seeds at the `keys` every seed has."""
    merged = pd.concat([f[keys + [value]].assign(_seed=i) for i, f in enumerate(frames)])
    g = merged.groupby(keys)
    out = g[value].mean().to_frame("value")
    out["n_seeds"] = g["_seed"].nunique()
    return out[out["n_seeds"] == len(frames)].reset_index()


def fig3(profile: dict, root) -> Figure:
    runs = load_runs(root, profile, "overfit")
    method = next(iter(runs))
    rs = runs[method]
    spes = {_steps_per_epoch(r) for r in rs}
    if len(spes) != 1:
        raise ReportInputError(f"overfit runs have different steps_per_epoch {sorted(spes)}; expected one schedule")
    spe = spes.pop()
    train = _mean_over_seeds([r.split("train") for r in rs], ["step"], "loss")
    valid = _mean_over_seeds([r.split("valid") for r in rs], ["step"], "loss")
    if valid.empty:
        raise ReportInputError("overfit runs: no evaluation step common to every seed")
    lam = _mean_over_seeds([read_mntk(r.dir, "layer") for r in rs], ["step", "layer"], "lambda_max")
    t_at = train_loss_at_evaluations(train.rename(columns={"value": "loss"}), valid)
    onset = overfitting_onset(valid["step"], valid["value"], t_at, spe)
    frames = [
        pd.DataFrame({"series": "train_loss", "layer": -1, "step": train.step, "value": train.value}),
        pd.DataFrame({"series": "valid_loss", "layer": -1, "step": valid.step, "value": valid.value}),
        pd.DataFrame({"series": "lambda_max", "layer": lam.layer.astype(int), "step": lam.step, "value": lam.value}),
    ]
    if onset.step is not None:
        frames.append(pd.DataFrame([{"series": "onset", "layer": -1, "step": onset.step, "value": onset.valid_loss}]))
    data = pd.concat(frames, ignore_index=True)
    data.insert(2, "epoch", data.step / spe)
    data["n_seeds"] = len(rs)
    seeds = [r.seed for r in rs]
    title = (f"Figure 3: training dynamics in the overfitting case (BERT, layer-wise mNTK) -- "
             f"{'onset marked' if onset.step is not None else NO_ONSET}\n{profile_caption(profile)}")
    sub = (f"overfit {method} runs, mean over seed(s) {seeds}. Onset of overfitting: the evaluation with the lowest "
           "validation loss, if it is not the last one (the validation loss never gets lower again) and the training loss (mean of the "
           "interval's logged losses) is lower at the last evaluation than there. Here: " + onset.reason + ".")
    return Figure("fig3", title, sub, data, _draw3, {"onset": onset, "steps_per_epoch": spe})


def _draw3(af: Figure):
    plt, sns = style()
    d = af.data
    layers = sorted(d.loc[d.series == "lambda_max", "layer"].unique())
    n = 1 + len(layers)
    cols = min(n, 3)
    rows = int(np.ceil(n / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(4.6 * cols, 3.6 * rows), squeeze=False)
    flat = axes.ravel()
    pal = sns.color_palette("colorblind", 3)
    onset = d[d.series == "onset"]
    ax = flat[0]
    for series, color, label in (("train_loss", pal[0], "training loss"), ("valid_loss", pal[1], "validation loss")):
        c = d[d.series == series]
        ax.plot(c.epoch, c.value, color=color, lw=1.4, label=label, marker="o" if series == "valid_loss" else None, ms=3)
    ax.set_xlabel("epochs trained")
    ax.set_ylabel("loss (log perplexity)")
    ax.set_title("(a) losses", fontsize=9)
    for k, layer in enumerate(layers, start=1):
        a = flat[k]
        c = d[(d.series == "lambda_max") & (d.layer == layer)]
        a.plot(c.epoch, c.value, color=pal[2], lw=1.4, marker="o", ms=3)
        a.set_yscale("log")
        a.set_xlabel("epochs trained")
        a.set_ylabel("λmax (log scale)")
        a.set_title(f"({chr(ord('a') + k)}) layer {int(layer) + 1}", fontsize=9)
    for a in flat[: n]:
        if not onset.empty:
            a.axvline(float(onset.epoch.iloc[0]), color="0.2", ls="--", lw=1.1, label="onset of overfitting")
    flat[0].legend(fontsize=7.5)
    if onset.empty:
        flat[0].text(0.03, 0.03, NO_ONSET, transform=flat[0].transAxes, ha="left", va="bottom", fontsize=8,
                     bbox={"facecolor": "white", "alpha": 0.85, "linewidth": 0})
    for a in flat[n:]:
        a.set_visible(False)
    finish(fig, af)
    return fig
