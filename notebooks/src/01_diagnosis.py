# %% [markdown]
# # 01 - Empirical diagnosis: FairDARTS searched for longer (paper Figure 1, Table 1)
#
# FairDARTS searches the DARTS cell space with sigmoid edge weights and a zero-one
# loss, optimising the architecture weights alpha with Adam. The paper reports
# that, searched long enough, every normal-cell weight sinks below the 0.85
# discretisation threshold: the discretised normal cell keeps no edge, nothing
# propagates through it, and the architecture is invalid. This notebook runs the
# FairDARTS search at several budgets, draws the mean normal- and reduction-cell
# weights per epoch (Figure 1), the discretised genotypes, and Table 1's
# search-phase columns, and records whether the claim held at this profile's
# scale.

# %% parameters
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
budgets = None  # None: the profile's budgets (dscd.experiments.BUDGETS)
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
overrides = {}  # configuration fields to change, e.g. {"data": "../../shared/data/cifar10-jpg.zip"}

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import dscd
from dscd.experiments import BUDGETS, LocalExecutor, method_label, run_budgets, search_claims, table1_rows
from dscd.genotype import draw_genotype, load_genotype
from dscd.plots import plot_cell_weights, save_figure
from dscd.search import load_metrics, search_profile
from dscd.tables import markdown_table, write_table

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
budgets = budgets or BUDGETS[profile]["adam"]
config = search_profile(profile, **overrides)
print(f"dscd {dscd.__version__}, profile {profile!r}: budgets {budgets} epochs; network C={config.channels}, "
      f"{config.layers} cells, {config.image_size}x{config.image_size} images, {config.per_class} per class, "
      f"batch {config.batch_size}, data {config.data or '$DSCD_DATA'}")

# %% [markdown]
# ## The searches (one per budget; reused or resumed when already there)

# %%
folders = run_budgets(profile, "adam", budgets, runs_dir, overrides, executor=LocalExecutor(jobs))
runs = [(method_label("adam", b), load_metrics(f)) for b, f in zip(budgets, folders)]
for (label, records), folder in zip(runs, folders):
    seconds = records[-1]["seconds"]
    print(f"{label}: {len(records)} epochs, {seconds:.0f} s ({seconds / len(records):.1f} s per epoch) in {folder}")

# %% [markdown]
# ## Figure 1: mean cell weights per epoch
#
# Solid: mean sigmoid(alpha) per cell type; dashed: mean of the discretised (0/1)
# weights; grey band: epochs whose discretised architecture is invalid.

# %%
fig = plot_cell_weights(runs, threshold=config.threshold)
save_figure(fig, out / "01_figure1")
plt.show()

# %% [markdown]
# ## The discretised genotypes

# %%
for (label, _), folder, budget in zip(runs, folders, budgets):
    g = load_genotype(folder / "genotype.json")
    fig = draw_genotype(g, title=label)
    save_figure(fig, out / f"01_genotype_{budget}", formats=("png",))
    plt.show()

# %% [markdown]
# ## Table 1 (search phase)

# %%
rows = table1_rows(folders)
write_table(rows, Path(tables_dir) / "01_table1_search")
display(Markdown(markdown_table(rows)))
claims = search_claims(folders, "adam")
metrics = {"notebook": "01_diagnosis", "profile": profile, "version": dscd.__version__, "budgets": budgets,
           "config": config.to_dict(), "table1": rows, "claims": claims}
(out / "01_diagnosis.json").write_text(json.dumps(metrics, indent=2))
print(("HELD: " if claims["held"] else "DID NOT HOLD at this scale: ") + claims["claim"])
for r in claims["runs"]:
    print(f"  {r['epochs']:>5} epochs: mean normal weight {r['mean_weight_normal_first']:.3f} -> "
          f"{r['mean_weight_normal_last']:.3f}, reduce -> {r['mean_weight_reduce_last']:.3f}; "
          f"{'valid' if r['valid'] else 'invalid'} (normal cell {'empty' if r['normal_cell_invalid'] else 'kept'})")
