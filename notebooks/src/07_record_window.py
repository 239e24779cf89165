# %% [markdown]
# # 07 - Why DSCD's valid cells are valid: the record window (an ablation, pre-registered)
#
# At `quick`, DSCD's record window K = 1,000 steps spans 200 epochs (5 steps per epoch), longer than
# FairDARTS' whole time to collapse, and every valid DSCD cell of notebook 02 is a frozen `x_best`. So
# DSCD's protection may be staleness (an old minibatch minimum that nothing beats) rather than
# exploration. Three arms test it: K = 15 steps (3 epochs, about the paper's window relative to its
# time to collapse), K = 15 with T = 5, and K = 3,000 (a record that never expires). Their predictions
# were committed in `results/quick/window-protocol.json` before the first of these runs started; this
# notebook judges each (held or not held, with its counts and test) and says which hypothesis came true.
#
# The arms cost about 4,800 search-epochs, so this notebook is an ablation: `dscd reproduce --all` (or
# `--only 07`) runs it, a plain `make figures` does not. It reuses notebook 01's FairDARTS(300) and
# notebook 02's DSCD runs from the same runs folder.

# %% tags=["parameters"]
profile = "quick"
figures_dir = "../outputs/notebook/figures"
tables_dir = "../outputs/notebook/tables"
runs_dir = "../outputs/notebook/runs"
protocol_file = None  # the registered predictions; None: results/<profile>/window-protocol.json of the source tree
run_searches = True  # False: judge the runs already in runs_dir (run nothing)
jobs = None  # searches run at once in worker processes (one torch thread each); None: one per core
executor = "local"  # "local" (worker processes) or "ray"
address = None  # the Ray cluster's address; None starts a local one
devices = None  # GPU indices, e.g. [0, 1]
batch_seeds = None  # seeds of one search run in one process (dscd.batched); None: the profile's choice, 0: each alone
overrides = {}  # configuration fields to change

# %%
import json
from pathlib import Path

import dscd
from dscd.executors import execute, make_executor
from dscd.profiles import get_profile
from dscd.paper.claims import collapse_time_of
from dscd.paper.experiments import planned_searches
from dscd.paper.plots import plot_survival, save_figure
from dscd.paper.tables import markdown_table, write_table
from dscd.paper.window import window_claims
from IPython.display import Markdown, display

if protocol_file is None:
    protocol_file = Path(dscd.__file__).resolve().parents[1] / "results" / profile / "window-protocol.json"
if not Path(protocol_file).is_file():
    raise FileNotFoundError(f"no registered window protocol at {protocol_file}: the experiment is registered for "
                            "the quick profile (results/quick/window-protocol.json)")
protocol = json.loads(Path(protocol_file).read_text())
out = Path(figures_dir)
out.mkdir(parents=True, exist_ok=True)
arms = protocol["arms"]
print(f"dscd {dscd.__version__}, profile {profile!r}; protocol {protocol_file} ({protocol['registered']})")
for arm, spec in arms.items():
    print(f"  {arm}: {spec['method']}, {spec['epochs']} epochs, seeds {spec['seeds']}: {spec['why']}")

# %% [markdown]
# ## The searches (reused when finished, resumed when interrupted)

# %%
seeds_per_process = get_profile(profile).seeds_per_process("darts") if batch_seeds is None else batch_seeds
if run_searches:
    jobs_ = [job for arm, spec in arms.items()
             for job in planned_searches(profile, arm, runs_dir, overrides, [spec["epochs"]], spec["seeds"])]
    execute(jobs_, make_executor(executor, jobs=jobs, devices=devices, address=address, batch_seeds=seeds_per_process))

# %% [markdown]
# ## The predictions, judged

# %%
result = window_claims(runs_dir, protocol)
for c in result["claims"]:
    test = c.get("test") or {}
    p = (f"; log-rank p = {test['p_value']:.3g}, permutation p = {test['p_permutation']:.3g}, Holm "
         f"{test['p_holm']:.3g}" if "p_permutation" in test else "")
    print(f"{c['id']} {c['verdict'].upper()}: {c['claim']}\n    {c['evidence']}{p}")
print(f"\nOutcome: {result['outcome']}")
if result["missing"]:
    print(f"not finished: {', '.join(result['missing'])}")

# %% [markdown]
# ## Time to collapse, per arm (Kaplan-Meier; `+` marks a run still valid at its end)

# %%
runs = Path(runs_dir)
groups = [("FairDARTS (300)", [runs / n for n in protocol["baselines"]["fairdarts-300"]]),
          ("FairDARTS + DSCD (300)", [runs / n for n in protocol["baselines"]["dscd-300"]])]
groups += [(f"{spec['method']} ({spec['epochs']})", [runs / r["run"] for r in result["runs"][arm]])
           for arm, spec in arms.items()]
survival = [(label, [collapse_time_of(f) for f in folders if (f / "summary.json").is_file()])
            for label, folders in groups]
fig = plot_survival([(label, times) for label, times in survival if times],
                    budget=max(spec["epochs"] for spec in arms.values()))
save_figure(fig, out / "07_record_window")

# %% [markdown]
# ## Every run: collapse, validity of x_current and x_best, proposals accepted, how long x_best was frozen

# %%
rows = [{"arm": arms[arm]["method"], **r} for arm, records in result["runs"].items() for r in records]
write_table(rows, Path(tables_dir) / "07_record_window_runs")
display(Markdown(markdown_table(rows)))
metrics = {"notebook": "07_record_window", "profile": profile, "version": dscd.__version__,
           "protocol": str(protocol_file), **result}
(out / "07_record_window.json").write_text(json.dumps(metrics, indent=2))
