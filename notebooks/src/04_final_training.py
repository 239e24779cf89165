# %% [markdown]
# # 04 - Final architectures trained from scratch (paper Table 1 "Eval. Test", Table 2)
#
# Every search of notebooks 01 (FairDARTS) and 02 (FairDARTS + DSCD) ends with a
# discretised genotype. Here each one is trained from scratch as a final network
# (the reference's evaluation: SGD with a cosine learning rate, auxiliary head with
# weight 0.4, cutout, drop path ramped over the epochs, gradient clipping) and its
# test accuracy fills Table 1's "Eval. Test" column; a genotype through which
# nothing propagates is not trained and reads "Invalid arch.", as in the paper.
# Table 2 lists parameters, FLOPs and accuracy of the final architectures next to
# the figures the paper publishes for DARTS and FairDARTS (marked as published,
# not measured here). Published genotypes can be trained alongside as a yardstick.
#
# **Scale.** The paper trains 20 cells with 36 channels on all 50,000 CIFAR-10
# images for 600 epochs (about 97%). The `quick` profile trains a small network
# on a CIFAR-10 subset at 16x16 for a few epochs on a CPU: its accuracies are far
# from 97% and differences between genotypes of a point or two are within the
# noise of its 1,000 test images (the standard error is printed). Parameters and
# FLOPs in Table 2 are those of the paper's evaluation network (C=36, 20 cells,
# 32x32), computed here from each genotype, so they compare directly with the
# published ones at every profile.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
published = None  # None: the published genotypes shipped with dscd; or a file of named genotypes
published_names = ["DARTS_V2", "FairDARTS_a"]  # trained alongside as a yardstick ([] for none)
overrides = {}  # training configuration fields to change, e.g. {"epochs": 50}
dscd_genotype = "final"  # "best": train DSCD's x_best genotype (genotype_best.json) instead of its final one
search_overrides = {}  # as notebooks 01/02's overrides (their runs are reused when these agree)
seeds = None  # as notebooks 01/02's seeds; None: the profile's seeds per budget (dscd.profiles.PROFILES)
ablation = True  # also train the genotypes of notebook 02's dscd_refresh_best ablation
jobs = None  # runs at once in worker processes (one torch thread each); None: one per core
executor = "local"  # where runs execute: "local" (worker processes) or "ray" (a Ray cluster; pip install 'dscd[ray]')
address = None  # the Ray cluster's address (e.g. "auto"); None starts a local one
devices = None  # GPU indices, e.g. [0, 1]: one run per GPU at a time

# %%
import json
import math
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import dscd
from dscd.train import train_profile
from dscd.paper.claims import eval_claims
from dscd.executors import execute, make_executor
from dscd.paper.experiments import planned_searches, table1_by_budget, table1_rows, table2_rows, train_genotypes
from dscd.paper.plots import plot_learning_curves, save_figure
from dscd.runfolder import JsonLines
from dscd.paper.tables import markdown_table, write_table

runner = make_executor(executor, jobs=jobs, devices=devices, address=address)  # runs every search and training below

out, tables = Path(figures_dir), Path(tables_dir)
out.mkdir(parents=True, exist_ok=True)
tables.mkdir(parents=True, exist_ok=True)
config = train_profile(profile, **overrides)
print(f"dscd {dscd.__version__}, profile {profile!r}: final networks trained at {config.scale}; batch "
      f"{config.batch_size}, lr {config.lr} cosine to {config.lr_min}, cutout {config.cutout}, drop path "
      f"{config.drop_path}, auxiliary weight {config.aux_weight}, data {config.data or '$DSCD_DATA'}")

# %% [markdown]
# ## The searches of notebooks 01 and 02
#
# Reused from `runs_dir` (a search that is missing or was interrupted is run or
# resumed here, so this notebook also runs on its own).

# %%
planned = [job for method in ("fairdarts", "dscd")
           for job in planned_searches(profile, method, runs_dir, search_overrides, seeds=seeds)]
if ablation:
    planned += planned_searches(profile, "dscd-refresh", runs_dir, search_overrides, seeds=seeds)
execute(planned, runner)
searches = [job.folder for job in planned]
for folder in searches:
    summary = json.loads((folder / "summary.json").read_text())
    print(f"{folder.name}: " + ("valid genotype" if summary["valid"]
                                else f"Invalid arch. ({summary['final']['invalid_reason']})"))

# %% [markdown]
# ## Final training (reused or resumed when already there)

# %%
evaluations = train_genotypes(profile, searches, runs_dir, published, published_names, overrides,
                              dscd_genotype=dscd_genotype,
                              executor=runner)
for e in evaluations:
    if e.summary is None:
        print(f"{e.label}: Invalid arch., not trained ({e.invalid_reason})")
        continue
    s = e.summary
    n_test = config.test_per_class * 10 if config.test_per_class else 10000
    se = 100 * math.sqrt(s["test_acc"] * (1 - s["test_acc"]) / n_test)
    print(f"{e.label}: test {100 * s['test_acc']:.2f}% (+/- {se:.1f} standard error), train "
          f"{100 * s['train_acc']:.2f}%, {s['seconds']:.0f} s; {s['size']['params_m']:.3f} M params as trained, "
          f"{s['paper_size']['params_m']:.2f} M / {s['paper_size']['flops_m']:.0f} M FLOPs at C=36, 20 cells")

# %% [markdown]
# ## Learning curves

# %%
trained = [(e.label, JsonLines(e.folder / "metrics.jsonl").read()) for e in evaluations if e.summary]
if trained:
    fig = plot_learning_curves(trained)
    save_figure(fig, out / "04_learning_curves")
    plt.show()
else:
    print("no valid genotype to train")

# %% [markdown]
# ## Table 1: search phase and final architecture

# %%
rows1 = table1_by_budget(searches, evaluations)
write_table(rows1, tables / "table1")
display(Markdown(markdown_table(rows1)))
runs1 = table1_rows(searches, evaluations)
write_table(runs1, tables / "table1_runs")
display(Markdown(markdown_table(runs1)))

# %% [markdown]
# ## Table 2: final architectures next to the published DARTS-family results

# %%
rows2 = table2_rows(evaluations, config.scale)
write_table(rows2, tables / "table2")
display(Markdown(markdown_table(rows2)))

# %% [markdown]
# ## What held at this scale
#
# Table 1's validity counts are judged in notebooks 01 and 02. Here: do DSCD's
# final architectures train to a higher test accuracy than FairDARTS' (the paper:
# 97.50% against 97.36%)? Welch's t-test over the valid architectures of each
# method, pooled over budgets and seeds; each accuracy itself carries a standard
# error of about 1.5 points at 1,000 test images.

# %%
claims = eval_claims(evaluations)
for c in claims:
    print(f"{c['verdict'].upper()}: {c['claim']} ({c['paper']})\n    {c['evidence']}"
          + (f"\n    {c['test']['note']}" if c.get("test") else ""))
metrics = {"notebook": "04_final_training", "profile": profile, "version": dscd.__version__,
           "searches": [job.folder.name for job in planned],
           "config": config.to_dict(), "scale": config.scale, "table1": rows1, "table1_runs": runs1, "table2": rows2,
           "claims": claims,
           "runs": [{"label": e.label, "source": e.source, "folder": str(e.folder),
                     "invalid_reason": e.invalid_reason,
                     "summary": None if e.summary is None else {k: e.summary[k] for k in (
                         "test_acc", "best_test_acc", "train_acc", "seconds", "size", "paper_size")}}
                    for e in evaluations]}
(out / "04_final_training.json").write_text(json.dumps(metrics, indent=2))
