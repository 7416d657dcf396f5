"""Figures 1a, 2 and 4: what the mNTK spectra of one training run look like (Sections 1, 2.2, 2.3).

All three read `mntk.csv` of the first seed's vanilla run (the paper shows one BERT training run):
- Figure 1a (`table1`, head rows): effective rank of each head's attention vs its lambda_max across
  epochs, a few heads highlighted (largest and smallest mean lambda_max, most varying);
- Figure 2 (`table1`, layer rows): (a) the first 16 eigenvalues of each layer's mNTK at epoch 10 (or
  the last logged epoch), (b) lambda_max per layer over epochs, (c) the condition number
  lambda_max / lambda_min over the first 20 epochs;
- Figure 4 (`spectrum`, head rows): every kept eigenvalue of every head at the last logged epoch,
  divided by the largest, as a histogram on a log axis, split at MAT's threshold (Eq. 4, alpha 0.1).

The x axis "epoch" is the epoch at whose start the mNTK was measured (= epochs trained before it).
"""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd

from mat.report.figure import Figure, finish, style
from mat.report.labels import profile_caption
from mat.report.run_logs import eig_columns, first_run, load_runs, read_mntk
from mat.report.runs import ReportInputError

SPECTRUM_EPOCH = 10  # Figure 2(a): "at the 10th epoch"
KAPPA_EPOCHS = 20  # Figure 2(c): "during the first 20 epochs"
TOP_EIGS = 16  # Figure 2(a): "the first 16 eigenvalues"
ALPHA = 0.1  # Figure 4's split: MAT's alpha for BERT (Sec. 5.1) in Eq. 4


def _seed_note(runs, method: str) -> str:
    seeds = [r.seed for r in runs[method]]
    return f"seed {seeds[0]}" + (f" of {len(seeds)}" if len(seeds) > 1 else "")


# ----------------------------------------------------------------------------- Figure 1a
def highlight_heads(df: pd.DataFrame) -> dict[str, str]:
    """{module: why} for up to three heads: largest and smallest mean lambda_max, and the one whose
    lambda_max varies most across epochs (max / min)."""
    g = df.groupby("module", sort=False)["lambda_max"]
    mean, ratio = g.mean(), g.max() / g.min().replace(0, np.nan)
    out: dict[str, str] = {}
    for module, why in ((mean.idxmax(), "largest mean λmax"), (mean.idxmin(), "smallest mean λmax")):
        out.setdefault(module, why)
    rest = ratio.drop(list(out), errors="ignore").dropna()
    if not rest.empty:
        out[rest.idxmax()] = "most varying λmax"
    return out


def fig1a(profile: dict, root) -> Figure:
    runs = load_runs(root, profile, "table1")
    run = first_run(runs, "vanilla", "table1")
    df = read_mntk(run.dir, "head", need=("effective_rank",))
    hl = highlight_heads(df)
    data = df[["module", "layer", "index", "epoch", "lambda_max", "effective_rank"]].copy()
    data["highlight"] = data["module"].map(hl).fillna("")
    data.insert(0, "seed", run.seed)
    title = f"Figure 1a: effective rank vs λmax of each attention head across epochs (vanilla BERT)\n{profile_caption(profile)}"
    sub = (f"table1 vanilla run, {_seed_note(runs, 'vanilla')}; mNTK of each head on the run's S sampled inputs at the "
           f"start of each epoch (epochs {int(data.epoch.min())}-{int(data.epoch.max())}); effective rank (Roy & Vetterli "
           "2007) of the head's attention matrices on the same inputs. Lines join one head's epochs.")
    return Figure("fig1a", title, sub, data.reset_index(drop=True), _draw1a, {"highlight": hl})


def _draw1a(af: Figure):
    plt, sns = style()
    d = af.data
    fig, ax = plt.subplots(figsize=(7.5, 5.2))
    norm = plt.Normalize(d.epoch.min(), max(d.epoch.max(), d.epoch.min() + 1))
    cmap = plt.get_cmap("viridis")
    for _, h in d[d.highlight == ""].groupby("module", sort=False):
        ax.plot(h.lambda_max, h.effective_rank, color="0.75", lw=0.7, zorder=1)
    colors = dict(zip(dict.fromkeys(d.loc[d.highlight != "", "module"]), sns.color_palette("bright", 3)))
    for module, h in d[d.highlight != ""].groupby("module", sort=False):
        l, i = int(h.layer.iloc[0]), int(h["index"].iloc[0])
        ax.plot(h.lambda_max, h.effective_rank, color=colors[module], lw=1.8, zorder=2,
                label=f"head {i + 1} of layer {l + 1} ({h.highlight.iloc[0]})")
    sc = ax.scatter(d.lambda_max, d.effective_rank, c=d.epoch, cmap=cmap, norm=norm, s=16, zorder=3, edgecolors="none")
    fig.colorbar(sc, ax=ax, label="epoch")
    ax.set_xscale("log")
    ax.set_xlabel("λmax of the head's mNTK (log scale)")
    ax.set_ylabel("effective rank of the head's attention")
    ax.legend(fontsize=7.5, loc="best")
    finish(fig, af)
    return fig


# ----------------------------------------------------------------------------- Figure 2
def condition_numbers(df: pd.DataFrame) -> pd.Series:
    """lambda_max / lambda_min per row; NaN where lambda_min is 0 (a singular mNTK has no finite kappa)."""
    lmin = df["lambda_min"].where(df["lambda_min"] > 0)
    return df["lambda_max"] / lmin


def fig2(profile: dict, root) -> Figure:
    runs = load_runs(root, profile, "table1")
    run = first_run(runs, "vanilla", "table1")
    df = read_mntk(run.dir, "layer")
    eigs = eig_columns(df)[:TOP_EIGS]
    if not eigs:
        raise ReportInputError(f"{run.dir / 'mntk.csv'}: no eig_* columns (ntk.top_k eigenvalues per module)")
    epochs = sorted(df.epoch.unique())
    at = SPECTRUM_EPOCH if SPECTRUM_EPOCH in epochs else int(epochs[-1])
    frames = []
    spec = df[df.epoch == at]
    for _, r in spec.iterrows():
        vals = r[eigs].to_numpy(float)
        frames.append(pd.DataFrame({"panel": "a_spectrum", "layer": int(r.layer), "x": np.arange(1, len(vals) + 1), "value": vals}))
    frames.append(pd.DataFrame({"panel": "b_lambda_max", "layer": df.layer.astype(int), "x": df.epoch, "value": df.lambda_max}))
    early = df[df.epoch < KAPPA_EPOCHS]
    frames.append(pd.DataFrame({"panel": "c_kappa", "layer": early.layer.astype(int), "x": early.epoch, "value": condition_numbers(early)}))
    data = pd.concat(frames, ignore_index=True)
    data.insert(0, "seed", run.seed)
    n_inf = int(data[(data.panel == "c_kappa")].value.isna().sum())
    shown = sorted(early.epoch.unique())
    title = (f"Figure 2: layer-wise mNTK of vanilla BERT: (a) first {len(eigs)} eigenvalues at epoch {at}"
             f"{'' if at == SPECTRUM_EPOCH else f' (the last logged; the paper uses epoch {SPECTRUM_EPOCH})'}, "
             f"(b) λmax, (c) κ = λmax/λmin\n{profile_caption(profile)}")
    sub = (f"table1 vanilla run, {_seed_note(runs, 'vanilla')}; one module per transformer layer; mNTK at the start of each "
           f"epoch on the run's S sampled inputs. (c) shows epochs {int(shown[0])}-{int(shown[-1])} "
           f"(the first {KAPPA_EPOCHS} or all logged)" + (f"; {n_inf} point(s) with λmin = 0 have no finite κ and are left out." if n_inf else "."))
    return Figure("fig2", title, sub, data, _draw2, {"spectrum_epoch": at, "kappa_epochs": shown, "infinite_kappa": n_inf})


def _draw2(af: Figure):
    plt, sns = style()
    d = af.data
    layers = sorted(d.layer.unique())
    colors = dict(zip(layers, sns.color_palette("viridis", len(layers))))
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.3))
    labels = {"a_spectrum": ("eigenvalue index i", "λ_i (log scale)"),
              "b_lambda_max": ("epoch", "λmax (log scale)"),
              "c_kappa": ("epoch", "κ = λmax / λmin (log scale)")}
    for ax, (panel, (xl, yl)) in zip(axes, labels.items()):
        for layer in layers:
            c = d[(d.panel == panel) & (d.layer == layer)].dropna(subset=["value"])
            marks = {"marker": "o", "ms": 3} if panel != "a_spectrum" else {"marker": ".", "ms": 5}
            ax.plot(c.x, c.value, color=colors[layer], lw=1.4, label=f"layer {layer + 1}", **marks)
        ax.set_yscale("log")
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
        ax.set_title({"a_spectrum": "(a)", "b_lambda_max": "(b)", "c_kappa": "(c)"}[panel], fontsize=9)
        ax.legend(fontsize=7, ncol=max(1, len(layers) // 6))
    finish(fig, af)
    return fig


# ----------------------------------------------------------------------------- Figure 4
def normalized_spectrum(df: pd.DataFrame, alpha: float = ALPHA) -> tuple[np.ndarray, float, dict]:
    """(every kept eigenvalue / the largest, Eq. 4's threshold / the largest, counts).

    Eq. 4: lambda_alpha = min + (max - min) * alpha over the set of all eigenvalues of all modules;
    the minimum is taken from `lambda_min` (the smallest of all S per module), the maximum from
    `lambda_max`, so the threshold is exact even when only the top_k eigenvalues were kept."""
    eigs = eig_columns(df)
    if not eigs:
        raise ReportInputError("mntk.csv: no eig_* columns (ntk.top_k eigenvalues per module)")
    values = df[eigs].to_numpy(float).ravel()
    values = values[~np.isnan(values)]
    top, bottom = float(df.lambda_max.max()), float(df.lambda_min.min())
    if not top > 0:
        raise ReportInputError("mntk.csv: the largest eigenvalue is not positive; nothing to normalise by")
    thr = (bottom + (top - bottom) * alpha) / top  # Eq. 4
    norm = values / top
    counts = {
        "eigenvalues": int(norm.size),
        "information": int((norm >= thr).sum()),
        "nuisance": int((norm < thr).sum()),
        "zero": int((norm <= 0).sum()),
        "modules": int(len(df)),
        "modules_information": int((df.lambda_max / top >= thr).sum()),
    }
    return norm, thr, counts


def _run_ntk(run) -> tuple[int | None, int | None]:
    """(ntk.samples, ntk.top_k) of a finished run from its summary.json (None when absent)."""
    try:
        cfg = json.loads((run.dir / "summary.json").read_text()).get("config", {}).get("ntk", {})
    except (OSError, json.JSONDecodeError, AttributeError):
        return None, None
    return cfg.get("samples"), cfg.get("top_k")


def fig4(profile: dict, root) -> Figure:
    runs = load_runs(root, profile, "spectrum")
    method = next(iter(runs))
    run = first_run(runs, method, "spectrum")
    df = read_mntk(run.dir, "head")
    epoch = int(df.epoch.max())
    late = df[df.epoch == epoch]
    norm, thr, counts = normalized_spectrum(late)
    positive = norm[norm > 0]
    lo = math.floor(math.log10(positive.min())) if positive.size else -6
    edges = np.logspace(lo, 0, 10 * (0 - lo) + 1)
    if edges[0] < thr < edges[-1]:  # the split is a bin edge: no bin straddles it
        edges = np.unique(np.append(edges, thr))
    hist, _ = np.histogram(positive, bins=edges)
    data = pd.DataFrame({"kind": "bin", "left": edges[:-1], "right": edges[1:], "count": hist, "value": np.nan})
    data = pd.concat([data, pd.DataFrame([{"kind": "threshold", "value": thr}])], ignore_index=True)
    data.insert(0, "seed", run.seed)
    samples, top_k = _run_ntk(run)
    kept = len(eig_columns(late))
    partial = samples is not None and kept < samples
    title = (f"Figure 4: normalised eigen-spectrum of all head-wise mNTKs at epoch {epoch}: information vs nuisance space\n"
             f"{profile_caption(profile)}")
    sub = (f"spectrum {method} run, {_seed_note(runs, method)}; {counts['modules']} heads x {kept} kept eigenvalues"
           + (f" of S = {samples} each (mntk.csv keeps the top {top_k}; the smallest {samples - kept} per head are not in "
              "this histogram)" if partial else "") +
           f"; divided by the largest. Split: MAT's Eq. 4 threshold with α = {ALPHA} (λα / λ̃max = {thr:.3g}): "
           f"{counts['information']} eigenvalues (and {counts['modules_information']} of {counts['modules']} heads' λmax) "
           f"in the information space, {counts['nuisance']} in the nuisance space"
           + (f"; {counts['zero']} exact zeros are off the log axis" if counts["zero"] else "") + ".")
    facts = {"epoch": epoch, "threshold": thr, **counts, "kept": kept, "samples": samples}
    return Figure("fig4", title, sub, data, _draw4, facts)


def _draw4(af: Figure):
    plt, sns = style()
    d = af.data
    bins = d[d.kind == "bin"]
    thr = float(d.loc[d.kind == "threshold", "value"].iloc[0])
    fig, ax = plt.subplots(figsize=(8, 4.6))
    pal = sns.color_palette("colorblind", 2)
    colors = [pal[1] if left >= thr else pal[0] for left in bins.left]
    ax.bar(bins.left, bins["count"], width=bins.right - bins.left, align="edge", color=colors, edgecolor="white", lw=0.3)
    ax.axvline(thr, color="0.2", ls="--", lw=1.2)
    ax.annotate(f"Eq. 4 threshold, α = {ALPHA}", (thr, 0.97), xycoords=("data", "axes fraction"), ha="right", va="top",
                rotation=90, fontsize=7.5)
    ax.text(0.02, 0.95, "nuisance space", transform=ax.transAxes, color=pal[0], fontsize=9, va="top")
    ax.text(0.98, 0.95, "information space", transform=ax.transAxes, color=pal[1], fontsize=9, va="top", ha="right")
    ax.set_xscale("log")
    ax.set_yscale("symlog", linthresh=1)
    ax.set_xlabel("normalised eigenvalue λ / λ̃max (log scale)")
    ax.set_ylabel("count (symlog)")
    finish(fig, af)
    return fig
