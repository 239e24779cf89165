# %% [markdown]
# # 06 - NAS-Bench-201: does DSCD find better cells, and does it escape DARTS' collapse?
#
# NAS-Bench-201 knows the accuracy of every one of its 15,625 cells, so a found cell's quality is a lookup
# rather than a training. Four arms search its cell: DARTS (softmax) and FairDARTS (sigmoid, zero-one
# loss), each with Adam or with DSCD on the architecture weights, on result seeds at the profile's budget
# `B`; the DSCD arms also at a longer budget. At `quick` the protocol (scale, budgets, seeds, DSCD's time
# constants K and T) was registered in `results/quick/nas-bench-201-protocol.json` before any DSCD run in
# this space, after a calibration of DARTS alone (`results/calibration/quick-nas-bench-201.json`).
#
# **12-epoch lookups, 200-epoch publications.** The shipped table holds NAS-Bench-201's 12-epoch training
# (its `hp='12'` results). Published tables quote its 200-epoch training, whose numbers are much higher
# (the all-skip cell: 36.84 % here, 54.30 % there). So our arms are compared with published methods only
# through a known cell (DARTS' all-skip cell) and through ranks, never through raw accuracies.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
executor = "local"  # "local" (worker processes) or "ray"
address = None  # the Ray cluster's address; None starts a local one
devices = None  # GPU indices, e.g. [0, 1]
batch_seeds = None  # seeds of one search run in one process (dscd.batched); None: the profile's choice, 0: each alone
overrides = {}  # configuration fields to change

# %%
import json
from pathlib import Path

from IPython.display import Markdown, display

import dscd
from dscd.executors import execute, make_executor
from dscd.nas_bench_201 import lookup
from dscd.paper.experiments import planned_searches
from dscd.paper.nas_bench_201_study import (ALL_SKIP, ARMS, PUBLISHED, arm_rows, random_cell_reference,
                                            study_claims, study_run, table_distribution)
from dscd.paper.plots import plot_accuracy_over_search, plot_found_cells, plot_survival, save_figure
from dscd.paper.tables import markdown_table, write_table
from dscd.profiles import METHOD_LABELS, get_profile

out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
protocol_path = Path(dscd.__file__).resolve().parents[1] / "results" / profile / "nas-bench-201-protocol.json"
protocol = json.loads(protocol_path.read_text()) if protocol_path.is_file() else None
plan = {arm.method: planned_searches(profile, arm.method, runs_dir, overrides) for arm in ARMS}
budget = min(e for arm in ARMS for e in get_profile(profile).budgets(arm.method))  # B: every arm searches it
print(f"dscd {dscd.__version__}, profile {profile!r}; B = {budget} epochs; protocol: "
      f"{protocol_path if protocol else 'none registered for this profile (the study runs, nothing was registered)'}")
for method, jobs_ in plan.items():
    print(f"  {METHOD_LABELS[method]}: {len(jobs_)} searches ({', '.join(j.folder.name for j in jobs_)})")

# %% [markdown]
# ## The searches (reused when finished, resumed when interrupted)

# %%
seeds_per_process = get_profile(profile).seeds_per_process("nas-bench-201") if batch_seeds is None else batch_seeds
execute([job for jobs_ in plan.values() for job in jobs_],
        make_executor(executor, jobs=jobs, devices=devices, address=address, batch_seeds=seeds_per_process))
runs = {method: [study_run(job.folder) for job in jobs_] for method, jobs_ in plan.items()}
at_budget = {method: [r for r in group if r["epochs"] == budget] for method, group in runs.items()}
labels = {method: f"{METHOD_LABELS[method]} ({budget})" for method in runs}

# %% [markdown]
# ## Every run: the found cell, looked up (NAS-Bench-201, 12-epoch), and DSCD's x_best where it differs

# %%
columns = ("run", "cell", "cifar10 test", "cifar100 test", "imagenet16-120 test", "cifar10 percentile",
           "parameterised edges", "collapsed", "collapse epoch")
rows = []
for method, group in runs.items():
    for r in group:
        rows.append({"arm": METHOD_LABELS[method], "epochs": r["epochs"], **{c: r[c] for c in columns}})
        if "x_best" in r:
            rows.append({"arm": METHOD_LABELS[method] + " x_best", "epochs": r["epochs"], "run": r["run"],
                         **r["x_best"], "collapsed": None, "collapse epoch": None})
write_table(rows, Path(tables_dir) / "06_nas_bench_201_runs")
display(Markdown(markdown_table(rows)))

# %% [markdown]
# ## The claims (one Holm family), and the table of the arms at B

# %%
claims = study_claims(at_budget, labels, budget)
for c in claims:
    test = c.get("test") or {}
    p = f"; p = {test['p_value']:.3g}, Holm {test.get('p_holm', float('nan')):.3g}" if "p_value" in test else ""
    print(f"{c['verdict'].upper()}: {c['claim']}\n    {c['evidence']}{p}")
tests = {c["claim"].split("'s cells")[0]: c for c in claims if c["id"].endswith("more_accurate")}
table = arm_rows(at_budget, labels)
for row in table:
    c = tests.get(row["arm"])
    t = (c or {}).get("test") or {}
    row["against Adam (CIFAR-10 test)"] = (f"Mann-Whitney U p = {t['p_value']:.3g} (Holm {t['p_holm']:.3g})"
                                           if "p_holm" in t else "-")
longer = {method: [r for r in group if r["epochs"] > budget] for method, group in runs.items()}
table += [{**row, "against Adam (CIFAR-10 test)": "-"}
          for row in arm_rows(longer, {m: f"{METHOD_LABELS[m]} ({max(r['epochs'] for r in g)})"
                                       for m, g in longer.items() if g})]
write_table(table, Path(tables_dir) / "06_nas_bench_201")
display(Markdown(markdown_table(table)))

# %% [markdown]
# ## Beside the field: random search and published methods
#
# Random search costs nothing and draws a cell uniformly: its rank percentile is 50 on average. The
# published methods' numbers are 200-epoch ones; DARTS-V1/V2 end on the all-skip cell, whose 12-epoch value
# is looked up here, and every method's cell is placed by the percentile its 200-epoch accuracy would
# have among NAS-Bench-201's cells (the 12-epoch and 200-epoch rankings agree closely but not exactly).

# %%
reference = random_cell_reference()
skip = lookup(ALL_SKIP)
print(f"random cell: {reference}")
print(f"all-skip cell (DARTS-V1/V2's): CIFAR-10 test {skip.accuracy['cifar10-test']:.2f} % (12-epoch), "
      f"percentile {skip.percentile['cifar10']}")
anchors = [{"method": name, "cifar10 test (200-epoch, published)": c10, "cifar100 test": c100,
            "imagenet16-120 test": im, "source": source} for name, c10, c100, im, source in PUBLISHED]
anchors.append({"method": "all-skip cell, 12-epoch lookup (this table)", "cifar10 test (200-epoch, published)":
                None, "cifar100 test": None, "imagenet16-120 test": None,
                "source": f"CIFAR-10 {skip.accuracy['cifar10-test']:.2f}, CIFAR-100 "
                          f"{skip.accuracy['cifar100-test']:.2f}, ImageNet16-120 {skip.accuracy['imagenet-test']:.2f}"})
write_table(anchors, Path(tables_dir) / "06_published_anchors")
display(Markdown(markdown_table(anchors)))

# %% [markdown]
# ## Figures: each arm's cells over the table's distribution, the accuracy over the search, time to collapse

# %%
points = [(labels[m], r["cifar10 test"]) for m, group in at_budget.items() for r in group]
fig = plot_found_cells(points, table_distribution("cifar10"), ("all-skip cell", skip.accuracy["cifar10-test"]),
                       title=f"found cells at B = {budget}, one point per seed")
save_figure(fig, out / "06_found_cells")

fig = plot_accuracy_over_search([(labels[m], [r["cifar10 test per epoch"] for r in group])
                                 for m, group in at_budget.items() if group])
save_figure(fig, out / "06_accuracy_over_search")

fig = plot_survival([(labels[m], [r["_collapse"] for r in group]) for m, group in at_budget.items() if group],
                    budget=budget, ylabel="fraction of seeds whose cell still learns")
save_figure(fig, out / "06_survival")

# %%
metrics = {"notebook": "06_nas_bench_201", "profile": profile, "version": dscd.__version__, "budget": budget,
           "protocol": str(protocol_path) if protocol else None, "claims": claims,
           "random_cell": reference, "all_skip_12_epoch": skip.to_dict(),
           "runs": {m: [{k: v for k, v in r.items() if not k.startswith("_")} for r in group]
                    for m, group in runs.items()}}
(out / "06_nas_bench_201.json").write_text(json.dumps(metrics, indent=2, default=str))
