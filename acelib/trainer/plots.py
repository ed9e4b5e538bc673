"""Seaborn figures of a run: reward / valid rate over steps, the probe's learning curve, buffer growth by step type,
LP distribution."""
from __future__ import annotations

from pathlib import Path


def training_plots(rows: list[dict], out_dir: str | Path, buffer_snapshot: str | None = None,
                   probes: list[dict] | None = None) -> list[Path]:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd
    import seaborn as sns

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths: list[Path] = []
    df = pd.DataFrame(rows)
    if df.empty:
        return paths
    sns.set_theme(style="whitegrid")

    cols = [c for c in ("reward/mean", "rate/valid_submission", "rate/format_error") if c in df]
    long = df.melt(id_vars="step", value_vars=cols, var_name="metric", value_name="value")
    # A step holds only B·G rollouts, so per-step values are noisy: dots are the steps, lines a rolling mean.
    window = max(1, min(5, len(df) // 4))
    long["smoothed"] = long.groupby("metric")["value"].transform(lambda v: v.rolling(window, min_periods=1).mean())
    fig, ax = plt.subplots(figsize=(7, 4))
    sns.scatterplot(data=long, x="step", y="value", hue="metric", alpha=0.45, legend=False, ax=ax)
    sns.lineplot(data=long, x="step", y="smoothed", hue="metric", ax=ax)
    ax.set_ylabel("value")
    ax.set_title("Reward and submission validity per learner step"
                 + (f" (lines: mean of the last {window})" if window > 1 else ""))
    paths.append(_save(fig, out / "reward_valid.png"))

    if probes:
        paths.append(probe_plot(probes, out / "probe_curve.png"))

    btypes = [c for c in df.columns if c.startswith("buffer/size_by_type/")]
    if btypes:
        long = df.melt(id_vars="step", value_vars=btypes, var_name="type", value_name="items")
        long["type"] = long["type"].str.rsplit("/", n=1).str[-1]
        fig, ax = plt.subplots(figsize=(7, 4))
        sns.lineplot(data=long, x="step", y="items", hue="type", marker="o", ax=ax)
        ax.set_title("Evolving Data Buffer: tasks by step type")
        paths.append(_save(fig, out / "buffer_growth.png"))

    if buffer_snapshot and Path(buffer_snapshot).exists():
        snap = pd.read_parquet(buffer_snapshot)
        if "lp" in snap and len(snap):
            fig, ax = plt.subplots(figsize=(7, 4))
            hue = "step_type" if "step_type" in snap else None
            sns.histplot(data=snap, x="lp", hue=hue, bins=30, multiple="stack", ax=ax)
            ax.set_title("Learnability Potential of buffer tasks (end of run)")
            paths.append(_save(fig, out / "lp_distribution.png"))
    return paths


def probe_plot(probes: list[dict], path: Path) -> Path:
    """Valid rate on the fixed probe tasks after each probed step, with 95% Wilson intervals (statsmodels)."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from statsmodels.stats.proportion import proportion_confint

    sns.set_theme(style="whitegrid")
    probes = sorted((p for p in probes if p["samples"]), key=lambda p: p["step"])
    steps = [p["step"] for p in probes]
    rate = [p["valid"] / p["samples"] for p in probes]
    lo, hi = proportion_confint([p["valid"] for p in probes], [p["samples"] for p in probes], method="wilson")
    fig, ax = plt.subplots(figsize=(7, 4))
    ax.errorbar(steps, rate, yerr=[[r - a for r, a in zip(rate, lo)], [b - r for r, b in zip(rate, hi)]],
                marker="o", capsize=4)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("learner steps done")
    ax.set_ylabel("valid submissions")
    n = probes[-1]["samples"] if probes else 0
    ax.set_title(f"Fixed probe tasks, never trained on ({n} responses per point, 95% CI)")
    return _save(fig, path)


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    import matplotlib.pyplot as plt
    plt.close(fig)
    return path
