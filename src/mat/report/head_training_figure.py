"""Figure 5 (Section 5.2): how many epochs MAT trained each attention head.

From `modules.csv` of the table1 MAT runs: a head counts as trained in an epoch when it was updated
in at least one step of it (steps_active > 0); its share is that count over the epochs the run
trained from MAT's first evaluation on (the epochs in its modules.csv from that one; a run MAT
stopped early has fewer). Before its first mNTK evaluation MAT trains every head (warm-up), so
counting those epochs would leave no head at 0 and make "approximately 20% of the heads were never
updated" impossible to observe; the figure counts the epochs in which MAT decides. The first
evaluation's epoch is read from the run's mntk.csv: the first epoch with rows carrying the policy's
`threshold` (Eq. 4), so it holds whatever the schedule's epoch numbering. The other reading, every
epoch of the run, is `report.fig5_epochs: all` in the table1 experiment. Heads of all seeds are
pooled. The paper's three observations are recomputed from the data: the share of heads trained in
at most 20% of the epochs ("more than half"), the average share ("34%"), and the share of heads
never updated ("approximately 20%").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from mat.report.figure import Figure, finish, style
from mat.report.labels import profile_caption
from mat.report.run_logs import load_runs, read_mntk, read_modules
from mat.report.runs import ReportInputError

RARE = 0.2  # "trained ... in only 20% of the epochs"
BINS = np.linspace(0.0, 1.0, 11)  # shares of epochs, 10 bins; the last one includes 1.0
EPOCHS = ("from_first_evaluation", "all")  # report.fig5_epochs: which epochs a share counts


def first_evaluation_epoch(run_dir) -> int:
    """The epoch of MAT's first mNTK evaluation: the first in mntk.csv with the policy's threshold."""
    mntk = read_mntk(run_dir)
    thr = pd.to_numeric(mntk["threshold"], errors="coerce") if "threshold" in mntk.columns else pd.Series(dtype=float)
    decided = mntk.loc[thr.notna(), "epoch"] if not thr.empty else pd.Series(dtype=int)
    if decided.empty:
        raise ReportInputError(
            f"{run_dir}/mntk.csv: no rows with the policy's 'threshold'; Figure 5 counts the epochs from MAT's "
            f"first evaluation (or set report.fig5_epochs: all in the table1 experiment to count every epoch)"
        )
    return int(decided.min())


def epochs_option(profile: dict) -> str:
    value = (profile["experiments"]["table1"].get("report") or {}).get("fig5_epochs", EPOCHS[0])
    if value not in EPOCHS:
        raise ReportInputError(f"profile {profile['profile']!r}, experiments.table1.report.fig5_epochs: {value!r}; expected one of {list(EPOCHS)}")
    return value


def epochs_trained(modules: pd.DataFrame, kind: str = "head", first_epoch: int | None = None) -> pd.DataFrame:
    """Per module of `kind`: epochs with steps_active > 0, epochs of the run, and their ratio; only the
    epochs from `first_epoch` on when given (MAT's first evaluation)."""
    if first_epoch is not None:
        modules = modules[modules["epoch"] >= first_epoch]
        if modules.empty:
            raise ReportInputError(f"modules.csv: no epochs from epoch {first_epoch} (MAT's first evaluation) on")
    rows = modules[modules["kind"] == kind]
    if rows.empty:
        raise ReportInputError(f"modules.csv: no modules of kind {kind!r} (kinds: {sorted(set(modules['kind']))})")
    n_epochs = modules["epoch"].nunique()
    g = rows.groupby("module", sort=False)
    out = pd.DataFrame({
        "layer": g["layer"].first(), "index": g["index"].first(),
        "epochs_trained": g["steps_active"].apply(lambda s: int((s > 0).sum())),
        "epochs": n_epochs,
    })
    out["share"] = out["epochs_trained"] / out["epochs"]
    return out.reset_index()


def observations(shares: pd.Series) -> dict[str, float]:
    """The paper's three numbers of Section 5.2, on these heads."""
    s = shares.to_numpy(float)
    return {
        "heads": int(s.size),
        "share_rarely_trained": float((s <= RARE + 1e-12).mean()),
        "mean_share": float(s.mean()),
        "share_never_updated": float((s == 0).mean()),
    }


def histogram(shares: pd.Series) -> pd.DataFrame:
    """Heads per tenth of epochs: [0, 0.1), [0.1, 0.2), ..., [0.9, 1.0]. Binned by integer tenths,
    so a share of exactly 3/5 lands in [0.6, 0.7) (np.linspace's 0.6000000000000001 edge would not)."""
    n = len(BINS) - 1
    idx = np.minimum(np.floor(shares.to_numpy(float) * n + 1e-9), n - 1).astype(int)
    counts = np.bincount(idx, minlength=n)
    return pd.DataFrame({"left": BINS[:-1], "right": BINS[1:], "heads": counts})


def fig5(profile: dict, root) -> Figure:
    runs = load_runs(root, profile, "table1")
    if "mat" not in runs:
        raise ReportInputError(f"experiment 'table1' has no method 'mat'; it has {sorted(runs)}")
    counted = epochs_option(profile)
    firsts = {r.seed: first_evaluation_epoch(r.dir) if counted == "from_first_evaluation" else None for r in runs["mat"]}
    per_head = pd.concat([epochs_trained(read_modules(r.dir), first_epoch=firsts[r.seed]).assign(seed=r.seed)
                          for r in runs["mat"]], ignore_index=True)
    obs = observations(per_head["share"])
    hist = histogram(per_head["share"])
    data = pd.concat([
        hist.assign(kind="bin"),
        per_head.assign(kind="head"),
        pd.DataFrame([{"kind": "observation", "name": k, "value": v} for k, v in obs.items()]),
    ], ignore_index=True)
    cols = ["kind", "left", "right", "heads", "seed", "module", "layer", "index", "epochs_trained", "epochs", "share", "name", "value"]
    data = data[cols]
    seeds = [r.seed for r in runs["mat"]]
    epochs = sorted(per_head["epochs"].unique())
    when = " from its first evaluation on" if counted == "from_first_evaluation" else ", warm-up included"
    title = f"Figure 5: share of epochs{when} in which MAT trained each attention head (BERT)\n{profile_caption(profile)}"
    since = ("epochs from MAT's first evaluation on (epoch " + "/".join(str(firsts[s]) for s in seeds) + "; the warm-up "
             "epochs before it, when every head trains, are not counted)" if counted == "from_first_evaluation"
             else "every epoch of the run, warm-up included (report.fig5_epochs: all)")
    sub = (f"table1 mat runs, seeds {seeds}, {obs['heads']} heads pooled; a head is trained in an epoch when at least one "
           f"step updated it (modules.csv steps_active > 0); share = such epochs / {since} ({'/'.join(map(str, epochs))} epochs).")
    return Figure("fig5", title, sub, data, _draw5, {**obs, "first_epochs": firsts, "epochs_counted": counted})


def observation_lines(obs: dict) -> list[str]:
    return [
        f"{100 * obs['share_rarely_trained']:.0f}% of heads trained in ≤ {100 * RARE:.0f}% of the epochs (paper: more than half)",
        f"average share of epochs per head: {100 * obs['mean_share']:.0f}% (paper: 34%)",
        f"{100 * obs['share_never_updated']:.0f}% of heads never updated (paper: about 20%)",
    ]


def _draw5(af: Figure):
    plt, sns = style()
    d = af.data
    bins = d[d.kind == "bin"]
    obs = {r["name"]: r["value"] for _, r in d[d.kind == "observation"].iterrows()}
    fig, ax = plt.subplots(figsize=(7.5, 4.6))
    ax.bar(bins.left * 100, bins.heads, width=(bins.right - bins.left) * 100, align="edge",
           color=sns.color_palette("colorblind", 1)[0], edgecolor="white")
    ax.set_xlim(0, 100)
    ax.set_ylim(0, max(1, int(bins.heads.max())) * 1.45)  # headroom for the observations box
    ax.yaxis.set_major_locator(plt.MaxNLocator(integer=True))
    ax.set_xlabel("share of epochs in which the head was trained (%)")
    ax.set_ylabel("number of heads")
    ax.text(0.98, 0.96, "\n".join(observation_lines(obs)), transform=ax.transAxes, ha="right", va="top", fontsize=8,
            bbox={"facecolor": "white", "alpha": 0.85, "linewidth": 0.5})
    finish(fig, af)
    return fig
