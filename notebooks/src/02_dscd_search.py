# %% [markdown]
# # 02 - FairDARTS + DSCD searched for longer (paper Figure 2, Table 1)
#
# The same search as notebook 01, except that the architecture weights are
# optimised by the DSCD hybrid: the same Adam for the local steps, alternating
# with doubly stochastic coordinate descent global steps (one coordinate of the
# best alpha so far re-drawn from a Beta proposal on [-3, 3], accepted only if
# the objective on the current validation minibatch beats the best of the last
# 1,000 values), the proposal's concentration annealed over the whole search.
# The paper reports that the normal cell then no longer empties, even when
# searched much longer (budgets several times those of FairDARTS), and the
# architectures stay valid. This notebook draws Figure 2, DSCD's acceptance
# statistics over the search, the genotypes and Table 1's search-phase rows, and
# records whether the claim held at this profile's scale.

# %% parameters
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
budgets = None  # None: the profile's budgets (dscd.experiments.BUDGETS)
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
overrides = {}  # configuration fields to change

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import dscd
from dscd.experiments import BUDGETS, LocalExecutor, method_label, run_budgets, search_claims, table1_rows
from dscd.genotype import draw_genotype, load_genotype
from dscd.plots import plot_cell_weights, plot_dscd_steps, save_figure
from dscd.search import load_metrics, search_profile
from dscd.tables import markdown_table, write_table

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
budgets = budgets or BUDGETS[profile]["dscd"]
config = search_profile(profile, optimizer="dscd", **overrides)
print(f"dscd {dscd.__version__}, profile {profile!r}: budgets {budgets} epochs; network C={config.channels}, "
      f"{config.layers} cells, {config.image_size}x{config.image_size} images, {config.per_class} per class, "
      f"batch {config.batch_size}; DSCD T={config.dscd_T}, K={config.dscd_K}, domain {config.dscd_domain}")

# %% [markdown]
# ## The searches (one per budget; reused or resumed when already there)

# %%
folders = run_budgets(profile, "dscd", budgets, runs_dir, overrides, executor=LocalExecutor(jobs))
runs = [(method_label("dscd", b), load_metrics(f)) for b, f in zip(budgets, folders)]
for (label, records), folder in zip(runs, folders):
    seconds = records[-1]["seconds"]
    print(f"{label}: {len(records)} epochs, {seconds:.0f} s ({seconds / len(records):.1f} s per epoch) in {folder}")

# %% [markdown]
# ## Figure 2: mean cell weights per epoch

# %%
fig = plot_cell_weights(runs, threshold=config.threshold)
save_figure(fig, out / "02_figure2")
plt.show()

# %% [markdown]
# ## DSCD over the search: accepted proposals and step types per epoch

# %%
fig = plot_dscd_steps(runs)
save_figure(fig, out / "02_dscd_steps")
plt.show()
for label, records in runs:
    d = records[-1]["dscd"]
    print(f"{label}: {d['local_steps']} local and {d['global_steps']} global steps; {d['accepted']} proposals "
          f"accepted ({d['accepted_normal']} normal, {d['accepted_reduce']} reduction), {d['rejected']} rejected")

# %% [markdown]
# ## The discretised genotypes

# %%
for (label, _), folder, budget in zip(runs, folders, budgets):
    g = load_genotype(folder / "genotype.json")
    fig = draw_genotype(g, title=label)
    save_figure(fig, out / f"02_genotype_{budget}", formats=("png",))
    plt.show()

# %% [markdown]
# ## Table 1 (search phase)

# %%
rows = table1_rows(folders)
write_table(rows, Path(tables_dir) / "02_table1_search")
display(Markdown(markdown_table(rows)))
claims = search_claims(folders, "dscd")
metrics = {"notebook": "02_dscd_search", "profile": profile, "version": dscd.__version__, "budgets": budgets,
           "config": config.to_dict(), "table1": rows, "claims": claims}
(out / "02_dscd_search.json").write_text(json.dumps(metrics, indent=2))
print(("HELD: " if claims["held"] else "DID NOT HOLD at this scale: ") + claims["claim"])
for r in claims["runs"]:
    print(f"  {r['epochs']:>5} epochs: mean normal weight {r['mean_weight_normal_first']:.3f} -> "
          f"{r['mean_weight_normal_last']:.3f}, reduce -> {r['mean_weight_reduce_last']:.3f}; "
          f"{'valid' if r['valid'] else 'invalid'}")
