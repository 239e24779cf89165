# %% [markdown]
# # 03 - Beta annealing of the DSCD proposal (paper appendix C)
#
# A DSCD global step replaces one coordinate of `x_best` by a sample from a Beta
# distribution over the coordinate's box `[lo, hi]` (for architecture weights,
# `[-3, 3]`). With the unit position `v = (x - lo) / (hi - lo)` and the
# concentration `phi` in `[0, 1)`:
#
# - `mu = phi * v + (1 - phi) * 0.5`, `sigma = (1 - phi) / sqrt(12)`;
# - `(alpha, beta)` are the Beta parameters with that mean and standard deviation;
# - `phi = 0` is the uniform distribution over the box, `phi -> 1` a Dirac delta at `x`;
# - `phi` follows a cosine schedule over the run: `phi(t) = (1 - cos(pi t / t_end)) / 2`.
#
# This notebook draws the proposal density around a fixed point (`v = 0.75`, as in
# the paper's supplementary animation) for `phi` from 0 to near 1, checks by
# sampling that the sampler has the intended mean and spread, and writes the
# animation.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
v = 0.75
phis = [0.0, 0.25, 0.5, 0.75, 0.9, 0.97, 0.99, 0.999]
domain = [-3.0, 3.0]
frames = 60
fps = 12
phi_end = 0.995
samples = 20000
seed = 0

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np

import dscd
from dscd.optim import beta_params, propose
from dscd.paper.plots import animate_beta_annealing, plot_beta_annealing, plot_phi_schedule, save_figure

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
lo, hi = domain
print(f"dscd {dscd.__version__}, profile {profile!r}, figures in {out.resolve()}")

# %% [markdown]
# ## The proposal density as phi grows

# %%
fig = plot_beta_annealing(v=v, phis=phis, domain=tuple(domain))
written = save_figure(fig, out / "03_beta_annealing")
plt.show()

# %% [markdown]
# ## The concentration schedule over a run

# %%
fig2 = plot_phi_schedule()
written += save_figure(fig2, out / "03_phi_schedule")
plt.show()

# %% [markdown]
# ## Does the sampler have the intended mean and spread?
#
# Proposals are drawn with NumPy's Beta sampler from a seeded generator. For each
# `phi`, the mean and standard deviation of `samples` proposals (in the unit
# interval) should match `mu` and `sigma` up to Monte-Carlo error.

# %%
rng = np.random.default_rng(seed)
x0 = lo + v * (hi - lo)
rows = []
for phi in phis:
    x = propose(np.full(samples, x0), lo, hi, phi, rng).numpy()
    unit = (x - lo) / (hi - lo)
    mu = phi * v + (1 - phi) * 0.5
    sigma = (1 - phi) / np.sqrt(12)
    a, b = beta_params(v, phi)
    rows.append({
        "phi": phi, "alpha": float(a), "beta": float(b), "mu": mu, "sigma": sigma,
        "sample_mean": float(unit.mean()), "sample_std": float(unit.std()),
        "mean_error_in_se": float((unit.mean() - mu) / (sigma / np.sqrt(samples))),
        "inside_domain": bool(((x >= lo) & (x <= hi)).all()),
    })
for r in rows:
    print(f"phi={r['phi']:<6} alpha={r['alpha']:<12.4g} beta={r['beta']:<12.4g} mu={r['mu']:.4f} "
          f"mean={r['sample_mean']:.4f} sigma={r['sigma']:.5f} std={r['sample_std']:.5f}")
assert all(r["inside_domain"] for r in rows)
assert all(abs(r["mean_error_in_se"]) < 5 for r in rows), "sample means disagree with mu"
assert all(abs(r["sample_std"] / r["sigma"] - 1) < 0.05 for r in rows), "sample spread disagrees with sigma"

# %% [markdown]
# ## Animation (the paper's supplement)

# %%
written += animate_beta_annealing(out / "03_beta_annealing", v=v, frames=frames, fps=fps,
                                  domain=tuple(domain), phi_end=phi_end)
metrics = {"notebook": "03_beta_annealing", "profile": profile, "version": dscd.__version__,
           "v": v, "domain": domain, "frames": frames, "checks": rows,
           "files": [p.name for p in written]}
(out / "03_beta_annealing.json").write_text(json.dumps(metrics, indent=2))
print("\n".join(str(p) for p in written))
