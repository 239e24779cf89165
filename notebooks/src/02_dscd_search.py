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
# architectures stay valid. This notebook runs DSCD at several budgets with
# several seeds and draws Figure 2 (a thin line per seed, the mean thick): mean
# cell weights, kept edges, and why each run ends where it ends (the age of
# x_best, whether alpha sits at x_best, the global phases in which a proposal was
# accepted). It compares DSCD's valid architectures with FairDARTS' at the same
# budget (Fisher's exact test), and runs an ablation that is not the paper's
# algorithm: `dscd_refresh_best`, which re-evaluates f(x_best) with the current
# weights at each switch to global steps. It also measures how long each method
# keeps a valid normal cell (time to collapse: Kaplan-Meier curves, compared by
# the log-rank test). Each claim is recorded as held, not held or inconclusive,
# with its counts and its test.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
budgets = None  # None: the profile's DSCD budgets (dscd.profiles.PROFILES)
seeds = None  # None: the profile's seeds per budget; a list: these seeds at every budget
ablation = True  # also run DSCD with dscd_refresh_best on, at the profile's budgets for it (B)
compare = True  # also run (or reuse notebook 01's) FairDARTS at B: valid counts and time to collapse compared there
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
executor = "local"  # where runs execute: "local" (worker processes) or "ray" (a Ray cluster; pip install 'dscd[ray]')
address = None  # the Ray cluster's address (e.g. "auto"); None starts a local one
devices = None  # GPU indices, e.g. [0, 1]: one run per GPU at a time
batch_seeds = None  # seeds of one search run in one process (dscd.batched); None: the profile's choice, 0: each alone
overrides = {}  # configuration fields to change

# %%
import json
from pathlib import Path

import matplotlib.pyplot as plt
from IPython.display import Markdown, display

import dscd
from dscd.paper.claims import collapse_time_of, dscd_claims, group_by_method, search_outcome
from dscd.executors import execute, make_executor
from dscd.paper.experiments import planned_searches, table1_by_budget, table1_rows
from dscd.profiles import get_profile
from dscd.paper.plots import draw_first_genotypes, plot_cell_weights, plot_dscd_steps, plot_survival, save_figure
from dscd.search import load_metrics, search_profile
from dscd.paper.tables import markdown_table, write_table

seeds_per_process = get_profile(profile).seeds_per_process("darts") if batch_seeds is None else batch_seeds
runner = make_executor(executor, jobs=jobs, devices=devices, address=address,
                       batch_seeds=seeds_per_process)  # runs every search and training below

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
at_budget = get_profile(profile).compare_budget  # B: where FairDARTS and DSCD are compared
planned = {"dscd": planned_searches(profile, "dscd", runs_dir, overrides, budgets, seeds)}
if ablation:
    planned["ablation"] = planned_searches(profile, "dscd-refresh", runs_dir, overrides, seeds=seeds)
if compare:
    planned["adam"] = planned_searches(profile, "fairdarts", runs_dir, overrides, [at_budget], seeds)
budgets = sorted({job.config["epochs"] for job in planned["dscd"]})
seeds = {epochs: [job.config["seed"] for job in planned["dscd"] if job.config["epochs"] == epochs]
         for epochs in budgets}
config = search_profile(profile, optimizer="dscd", **overrides)
print(f"dscd {dscd.__version__}, profile {profile!r}: budgets {budgets} epochs, seeds per budget {seeds}, "
      f"compared with FairDARTS at {at_budget}; network "
      f"C={config.channels}, {config.layers} cells, {config.image_size}x{config.image_size} images, "
      f"{config.per_class} per class, batch {config.batch_size}; DSCD T={config.dscd_T}, K={config.dscd_K}, "
      f"domain {config.dscd_domain}")

# %% [markdown]
# ## The searches (one per budget and seed, all at once; reused or resumed when already there)

# %%
execute([job for group in planned.values() for job in group], runner)
folders = {name: [job.folder for job in group] for name, group in planned.items()}
groups = group_by_method([search_outcome(f) for f in folders["dscd"] + folders.get("ablation", [])])
for label, outcomes in groups.items():
    seconds = [load_metrics(o.folder)[-1]["seconds"] for o in outcomes]
    print(f"{label}: {len(outcomes)} seeds, {sum(seconds) / len(seconds):.0f} s per search "
          f"({sum(seconds) / len(seconds) / outcomes[0].epochs:.1f} s per epoch); "
          + ", ".join(o.folder.name for o in outcomes))

# %% [markdown]
# ## Figure 2: mean cell weights, kept edges, and where DSCD stands, per epoch
#
# Rows 1-2 as in Figure 1. Row 3: epochs since x_best last changed (a dot: alpha
# sits exactly at x_best at the epoch's end, as after every global phase). Row 4:
# global phases begun (red) and those in which at least one proposal was accepted
# (green), cumulative. A run whose x_best age grows with the epoch and whose green
# line is flat is stuck: every global phase sends alpha back to an old x_best.

# %%
series = [(label, [load_metrics(o.folder) for o in outcomes]) for label, outcomes in groups.items()]
fig = plot_cell_weights(series, threshold=config.threshold)
save_figure(fig, out / "02_figure2")
plt.show()

# %% [markdown]
# ## Accepted proposals, and the alpha-step loss against y_best
#
# A proposal is accepted when its loss beats y_best, the minimum of the last K
# observed losses. When the network's weights overfit their half of the data, the
# alpha-step loss rises; a y_best recorded under earlier weights then stays out of
# reach. The ablation's y_best follows the loss (it is re-evaluated at each switch
# to global steps).

# %%
fig = plot_dscd_steps(series)
save_figure(fig, out / "02_dscd_steps")
plt.show()

# %% [markdown]
# ## Time to collapse: how long each method keeps a valid normal cell
#
# A run's collapse epoch is the first epoch from which its normal cell stays
# invalid to the end of its budget; a run valid at the end is censored there
# (marked +). The curves are Kaplan-Meier estimates of the fraction of seeds
# still valid, at the profile's comparison budget B, for FairDARTS, DSCD and the
# ablation; DSCD's longer budgets are drawn too, each up to its own end. The
# claims below compare FairDARTS and DSCD at B with the log-rank test.

# %%
survival = [(label, [collapse_time_of(o.folder) for o in outcomes]) for label, outcomes in
            group_by_method([search_outcome(f) for group in folders.values() for f in group]).items()]
fig = plot_survival(survival, budget=max(budgets))
save_figure(fig, out / "02_survival")
plt.show()

# %% [markdown]
# ## The discretised genotypes (first seed of each budget)

# %%
draw_first_genotypes(groups, out, lambda first: f"02_genotype_{first.folder.name}")
plt.show()

# %% [markdown]
# ## Table 1 (search phase): per budget over the seeds, then per run

# %%
searched = folders["dscd"] + folders.get("ablation", []) + folders.get("adam", [])
rows = table1_by_budget(searched)
write_table(rows, Path(tables_dir) / "02_table1_search")
display(Markdown(markdown_table(rows)))
runs = table1_rows(searched)
write_table(runs, Path(tables_dir) / "02_table1_search_runs")
display(Markdown(markdown_table(runs)))

# %% [markdown]
# ## The paper's claims at this scale, and the ablation

# %%
result = dscd_claims(folders["dscd"], folders.get("adam", []), folders.get("ablation", []), compare_at=at_budget)
metrics = {"notebook": "02_dscd_search", "profile": profile, "version": dscd.__version__, "budgets": budgets,
           "seeds": seeds, "config": config.to_dict(), "table1": rows, "table1_runs": runs, **result}
(out / "02_dscd_search.json").write_text(json.dumps(metrics, indent=2))
for c in result["claims"]:
    print(f"{c['verdict'].upper()}: {c['claim']} ({c['paper']})\n    {c['evidence']}"
          + (f"\n    {c['test']['note']}" if (c.get("test") or {}).get("note") else ""))
for r in result["runs"] + result.get("ablation_refresh_best", {}).get("runs", []):
    d = r["dscd"]
    print(f"  {r['run']}: {'valid' if r['valid'] else 'invalid'}, kept edges {r['kept_edges_normal']}/"
          f"{r['kept_edges_reduce']}; x_best last changed in epoch {d['x_best_last_changed_epoch']}"
          f"{' (stuck)' if d['stuck'] else ''}; {d['accepted_proposals']} of {d['global_steps']} proposals accepted "
          f"in {d['phases_accepting']} of {d['global_phases']} global phases; alpha loss "
          f"{d['alpha_loss_first_epoch']:.2f} -> {d['alpha_loss_last_epoch']:.2f}, y_best {d['y_best_last']:.2f}")
if "ablation_refresh_best" in result:
    a = result["ablation_refresh_best"]
    print(f"ablation ({a['what']}):\n    {a['evidence']}; stuck: {a['stuck']}; mean accepted proposals: "
          f"{a['mean_accepted_proposals']}" + (f"\n    {a['test']['note']}" if a.get("test") else ""))
