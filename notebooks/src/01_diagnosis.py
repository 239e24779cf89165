# %% [markdown]
# # 01 - Empirical diagnosis: FairDARTS searched for longer (paper Figure 1, Table 1)
#
# FairDARTS searches the DARTS cell space with sigmoid edge weights and a zero-one
# loss, optimising the architecture weights alpha with Adam. The paper reports
# that, searched long enough, every normal-cell weight sinks below the 0.85
# discretisation threshold: the discretised normal cell keeps no edge, nothing
# propagates through it, and the architecture is invalid. This notebook runs the
# FairDARTS search at several budgets, each with several seeds, draws the mean
# normal- and reduction-cell weights and the edges each cell keeps per epoch
# (Figure 1; a thin line per seed, the mean thick), the discretised genotypes and
# Table 1's search-phase columns (valid architectures as k/n seeds), and records
# for each claim whether it held, did not hold or was inconclusive at this
# profile's scale, with the counts behind it.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
budgets = None  # None: the profile's FairDARTS budgets (dscd.profiles.PROFILES)
seeds = None  # None: the profile's seeds per budget; a list: these seeds at every budget
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
executor = "local"  # where runs execute: "local" (worker processes) or "ray" (a Ray cluster; pip install 'dscd[ray]')
address = None  # the Ray cluster's address (e.g. "auto"); None starts a local one
devices = None  # GPU indices, e.g. [0, 1]: one run per GPU at a time
batch_seeds = None  # seeds of one search run in one process (dscd.batched); None: the profile's choice, 0: each alone
overrides = {}  # configuration fields to change, e.g. {"data": "cifar10:~/data/cifar10", "download": True}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import dscd
from dscd.paper.claims import collapse_claims, group_by_method, search_outcome
from dscd.executors import execute, make_executor
from dscd.profiles import get_profile
from dscd.paper.experiments import planned_searches, table1_by_budget, table1_rows
from dscd.paper.plots import draw_first_genotypes, plot_cell_weights, save_figure
from dscd.search import load_metrics, search_profile
from dscd.paper.tables import markdown_table, write_table

seeds_per_process = get_profile(profile).seeds_per_process("darts") if batch_seeds is None else batch_seeds
runner = make_executor(executor, jobs=jobs, devices=devices, address=address,
                       batch_seeds=seeds_per_process)  # runs every search and training below

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
planned = planned_searches(profile, "fairdarts", runs_dir, overrides, budgets, seeds)
budgets = sorted({job.config["epochs"] for job in planned})
seeds = {epochs: [job.config["seed"] for job in planned if job.config["epochs"] == epochs] for epochs in budgets}
config = search_profile(profile, **overrides)
print(f"dscd {dscd.__version__}, profile {profile!r}: budgets {budgets} epochs, seeds per budget {seeds}; network "
      f"C={config.channels}, {config.layers} cells, {config.image_size}x{config.image_size} images, "
      f"{config.per_class} per class, batch {config.batch_size}, data {config.data or '$DSCD_DATA'}")

# %% [markdown]
# ## The searches (one per budget and seed; reused or resumed when already there)

# %%
execute(planned, runner)
folders = [job.folder for job in planned]
groups = group_by_method([search_outcome(f) for f in folders])
for label, outcomes in groups.items():
    seconds = [load_metrics(o.folder)[-1]["seconds"] for o in outcomes]
    print(f"{label}: {len(outcomes)} seeds, {sum(seconds) / len(seconds):.0f} s per search "
          f"({sum(seconds) / len(seconds) / outcomes[0].epochs:.1f} s per epoch); "
          + ", ".join(o.folder.name for o in outcomes))

# %% [markdown]
# ## Figure 1: mean cell weights and kept edges per epoch
#
# Thin lines: one seed each; thick: their mean. Top: mean sigmoid(alpha) per cell
# type and the 0.85 threshold; bottom: edges each cell keeps when discretised;
# grey: epochs whose discretised architecture is invalid (darker: more seeds).

# %%
fig = plot_cell_weights([(label, [load_metrics(o.folder) for o in outcomes]) for label, outcomes in groups.items()],
                        threshold=config.threshold)
save_figure(fig, out / "01_figure1")
plt.show()

# %% [markdown]
# ## The discretised genotypes (first seed of each budget)

# %%
draw_first_genotypes(groups, out, lambda first: f"01_genotype_{first.epochs}")
plt.show()

# %% [markdown]
# ## Table 1 (search phase): per budget over the seeds, then per run

# %%
rows = table1_by_budget(folders)
write_table(rows, Path(tables_dir) / "01_table1_search")
display(Markdown(markdown_table(rows)))
runs = table1_rows(folders)
write_table(runs, Path(tables_dir) / "01_table1_search_runs")
display(Markdown(markdown_table(runs)))

# %% [markdown]
# ## The paper's claims at this scale

# %%
claims = collapse_claims(folders)
metrics = {"notebook": "01_diagnosis", "profile": profile, "version": dscd.__version__, "budgets": budgets,
           "seeds": seeds, "config": config.to_dict(), "table1": rows, "table1_runs": runs, "claims": claims,
           "runs": [search_outcome(f).to_dict() for f in folders]}
(out / "01_diagnosis.json").write_text(json.dumps(metrics, indent=2))
for c in claims:
    print(f"{c['verdict'].upper()}: {c['claim']} ({c['paper']})\n    {c['evidence']}"
          + (f"\n    {c['test']['note']}" if c.get("test") else ""))
