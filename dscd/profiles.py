"""Profiles: the one place that says what ``smoke``, ``quick`` and ``paper`` are.

A :class:`Profile` is one entry of :data:`PROFILES` and holds everything a scale of the
experiments needs: its search and final-training configurations (as changes to the
paper's defaults in :class:`dscd.search.SearchConfig` and :class:`dscd.train.TrainConfig`),
the search budgets of each method with the number of seeds per budget, the budget ``B`` at
which FairDARTS and FairDARTS + DSCD are compared, and the parameters each notebook
receives. The command line's ``--profile`` choices, :func:`dscd.search.search_profile` /
:func:`dscd.train.train_profile`,
the notebooks and ``dscd reproduce`` all read from here, so adding a profile is adding one
entry::

    from dscd.profiles import PROFILES, Profile
    PROFILES["laptop"] = Profile("laptop", "a bigger CPU run", search={...}, train={...},
                                 searches={"fairdarts": {50: 3, 250: 5}, "dscd": {250: 5}},
                                 compare_budget=250)

This module is data alone and imports nothing of the package: the search and training modules read
it to build their configurations.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

__all__ = ["METHODS", "METHOD_LABELS", "PROFILES", "Profile", "config_method", "get_profile", "method_changes",
           "method_id", "run_prefix"]

#: The search methods of the experiments, by id, and the search configuration fields that make each one:
#: FairDARTS (Adam on alpha), FairDARTS + DSCD, this package's ``dscd_refresh_best`` ablation, and the
#: record-window arms (DSCD with a record window of K = 15 or 3,000 steps, and K = 15 with T = 5; the
#: window experiment of notebook 02, whose predictions ``results/quick/window-protocol.json`` registered).
METHODS: dict[str, dict[str, Any]] = {
    "fairdarts": {"space": "darts", "optimizer": "adam"},
    "dscd": {"space": "darts", "optimizer": "dscd"},
    "dscd-refresh": {"space": "darts", "optimizer": "dscd", "dscd_refresh_best": True},
    "dscd-k15": {"space": "darts", "optimizer": "dscd", "dscd_K": 15, "dscd_T": 50},
    "dscd-k3000": {"space": "darts", "optimizer": "dscd", "dscd_K": 3000, "dscd_T": 50},
    "dscd-k15-t5": {"space": "darts", "optimizer": "dscd", "dscd_K": 15, "dscd_T": 5},
    # NAS-Bench-201's four arms (notebook 06): DARTS and FairDARTS, each with Adam or DSCD on alpha. DSCD's
    # time constants are the profile's for this space (Profile.spaces), fixed before any DSCD run there.
    "nb201-darts": {"space": "nas-bench-201", "relaxation": "softmax", "optimizer": "adam"},
    "nb201-darts-dscd": {"space": "nas-bench-201", "relaxation": "softmax", "optimizer": "dscd"},
    "nb201-fairdarts": {"space": "nas-bench-201", "relaxation": "sigmoid", "optimizer": "adam"},
    "nb201-fairdarts-dscd": {"space": "nas-bench-201", "relaxation": "sigmoid", "optimizer": "dscd"},
}

#: Each method's name in tables and figures (Table 1's row label, before the budget).
METHOD_LABELS: dict[str, str] = {
    "fairdarts": "FairDARTS",
    "dscd": "FairDARTS + DSCD",
    "dscd-refresh": "FairDARTS + DSCD, y_best refreshed",
    "dscd-k15": "FairDARTS + DSCD, K=15",
    "dscd-k3000": "FairDARTS + DSCD, K=3000",
    "dscd-k15-t5": "FairDARTS + DSCD, K=15, T=5",
    "nb201-darts": "DARTS",
    "nb201-darts-dscd": "DARTS + DSCD",
    "nb201-fairdarts": "FairDARTS",
    "nb201-fairdarts-dscd": "FairDARTS + DSCD",
}


def method_changes(method: str) -> dict[str, Any]:
    """The configuration fields of search method ``method`` (an id of :data:`METHODS`)."""
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}: choose one of {', '.join(METHODS)}")
    return dict(METHODS[method])


def method_id(optimizer: str, refresh_best: bool = False) -> str:
    """A search's method: ``fairdarts`` (Adam on alpha), ``dscd``, or ``dscd-refresh`` (the
    ``dscd_refresh_best`` ablation). A published genotype's is ``published:<name>``."""
    if optimizer != "dscd":
        return "fairdarts"
    return "dscd-refresh" if refresh_best else "dscd"


def config_method(config: Mapping[str, Any]) -> str:
    """The method (an id of :data:`METHODS`) of a search configuration (as a dict, e.g. from
    ``summary.json``): the method with the most fields that all match it, ``fairdarts`` for Adam.
    So a DSCD search with ``dscd_K`` 15 is ``dscd-k15``, one with the profile's K is ``dscd``."""
    matching = [m for m, fields in METHODS.items()
                if all(config.get(k, _UNSET_DEFAULTS.get(k)) == v for k, v in fields.items())]
    if not matching:
        return method_id(config["optimizer"], bool(config.get("dscd_refresh_best", False)))
    return max(matching, key=lambda m: len(METHODS[m]))


#: What a configuration written before a field existed holds for it.
_UNSET_DEFAULTS: dict[str, Any] = {"dscd_refresh_best": False, "space": "darts"}


def run_prefix(method: str) -> str:
    """A search folder's name before its budget: ``adam`` for FairDARTS (Adam on alpha), else the method id."""
    method_changes(method)
    return "adam" if method == "fairdarts" else method


@dataclass(frozen=True, eq=False)
class Profile:
    """One scale of the experiments.

    ``search`` and ``train``: changes to the paper's search and training configurations.
    ``searches``: per method id (:data:`METHODS`), ``{epochs: number of seeds}``; the seeds of a
    budget are ``0 .. n-1`` (result seeds; calibration seeds are 100 and up). ``compare_budget``:
    the budget ``B`` at which notebook 02 compares FairDARTS with FairDARTS + DSCD (valid counts,
    time to collapse) and runs the ``dscd-refresh`` ablation; both methods must search at it.
    ``notebooks``: extra parameters per notebook number (``"03"``: ``{"frames": 60}``).
    ``spaces``: per search space other than ``darts`` (:data:`dscd.search_spaces.SPACES`), the changes
    that replace ``search``'s network and data sizes for a search of that space at this scale.
    ``batch_seeds``: per search space, how many seeds of one search the notebooks and ``dscd reproduce`` run
    in one process (:mod:`dscd.batched`) at this scale, where that is faster (``benchmarks/bench_batched.py``);
    a space not named runs each seed in its own process. It says how runs execute, not what they compute
    (batched seeds agree with separate runs to float32 rounding), so it never makes a regeneration out of date.
    """

    name: str
    summary: str
    search: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    searches: Mapping[str, Mapping[int, int]] = field(default_factory=dict)
    compare_budget: int | None = None
    notebooks: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    spaces: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    batch_seeds: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = [m for m in self.searches if m not in METHODS]
        if unknown:
            raise ValueError(f"profile {self.name!r}: unknown method(s) {unknown}; choose from {', '.join(METHODS)}")
        for method, budgets in self.searches.items():
            for epochs, seeds in budgets.items():
                if not (isinstance(epochs, int) and epochs >= 1 and isinstance(seeds, int) and seeds >= 1):
                    raise ValueError(f"profile {self.name!r}: {method} budgets must map epochs >= 1 to a number "
                                     f"of seeds >= 1, got {epochs!r}: {seeds!r}")
        for space, seeds in self.batch_seeds.items():
            if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 0:
                raise ValueError(f"profile {self.name!r}: batch_seeds must map a search space to a number of seeds "
                                 f">= 0 (0: each alone), got {space!r}: {seeds!r}")
        if self.compare_budget is not None:
            missing = [m for m in ("fairdarts", "dscd") if self.compare_budget not in self.searches.get(m, {})]
            if missing:
                verb = "lacks" if len(missing) == 1 else "lack"
                raise ValueError(f"profile {self.name!r}: compare_budget {self.compare_budget} must be a budget of "
                                 f"both fairdarts and dscd; {' and '.join(missing)} {verb} it")

    def search_changes(self, space: str = "darts") -> dict[str, Any]:
        """This profile's changes to the paper's search configuration, at its scale of ``space``
        (:func:`dscd.search.search_profile` builds the configuration)."""
        return {**self.search, **self.spaces.get(space, {})}

    def budgets(self, method: str) -> list[int]:
        """The search budgets (epochs) of ``method``, shortest first; ``[]`` when it has none."""
        method_changes(method)
        return sorted(self.searches.get(method, {}))

    def seeds(self, method: str, epochs: int) -> list[int]:
        """The result seeds of ``method`` at budget ``epochs``: ``0 .. n-1``."""
        count = self.searches.get(method, {}).get(epochs)
        if count is None:
            raise ValueError(f"profile {self.name!r} has no {method} search of {epochs} epochs "
                             f"(its budgets: {self.budgets(method)})")
        return list(range(count))

    def plan(self, method: str, budgets: Sequence[int] | None = None,
             seeds: Sequence[int] | None = None) -> list[tuple[int, list[int]]]:
        """``[(epochs, seeds), ...]`` of ``method``: this profile's budgets and seeds per budget, or
        ``budgets`` and/or one list of ``seeds`` for every budget where given (a notebook's parameters).
        A budget the profile does not plan gets as many seeds as the method's most-seeded budget."""
        chosen = sorted(budgets) if budgets is not None else self.budgets(method)
        most = max(self.searches.get(method, {}).values(), default=1)

        def seeds_of(epochs: int) -> list[int]:
            if seeds is not None:
                return list(seeds)
            return self.seeds(method, epochs) if epochs in self.searches.get(method, {}) else list(range(most))

        return [(int(e), seeds_of(int(e))) for e in chosen]

    def seeds_per_process(self, space: str = "darts") -> int:
        """How many seeds of one search in ``space`` run in one process at this scale (0: each alone)."""
        return int(self.batch_seeds.get(space, 0))

    def notebook_parameters(self, number: str) -> dict[str, Any]:
        """The parameters this profile gives notebook ``number`` besides ``profile`` and its folders."""
        return dict(self.notebooks.get(number, {}))


_FIGURE3 = {"dim": 10, "second_dim": 2, "runs": 20, "budget": 10000, "long_budget": 50000}

def _nas_bench_201_arms(budget: int, long_budget: int, seeds: int, long_seeds: int) -> dict[str, dict[int, int]]:
    """Notebook 06's searches: the four arms at ``budget`` with ``seeds`` seeds each, and the two DSCD arms
    also at ``long_budget`` (at least twice it) with ``long_seeds``."""
    return {"nb201-darts": {budget: seeds}, "nb201-fairdarts": {budget: seeds},
            "nb201-darts-dscd": {budget: seeds, long_budget: long_seeds},
            "nb201-fairdarts-dscd": {budget: seeds, long_budget: long_seeds}}


#: Every profile, by name. ``paper`` is the paper's scale (a GPU); ``quick`` is calibrated for two CPU cores
#: (FairDARTS ends valid at 60 epochs and invalid at 300 in at least 8 of 10 calibration seeds; see
#: ``python -m dscd.paper.calibration``); ``smoke`` checks the plumbing in minutes.
PROFILES: dict[str, Profile] = {
    "smoke": Profile(
        "smoke", "seconds: every code path on sklearn's 8x8 digits, 2-4 epoch searches (says nothing about the paper)",
        search={"data": "digits", "per_class": 20, "test_per_class": 10, "image_size": 8, "channels": 2,
                "layers": 3, "batch_size": 10, "epochs": 3, "dscd_T": 5, "test_every": 1,
                "checkpoint_minutes": 5.0},
        train={"data": "digits", "per_class": 20, "test_per_class": 10, "image_size": 8, "channels": 4,
               "layers": 3, "batch_size": 10, "epochs": 2, "cutout": 4},
        searches={"fairdarts": {2: 2, 3: 2}, "dscd": {3: 2, 4: 2}, "dscd-refresh": {3: 2},
                  **_nas_bench_201_arms(3, 6, seeds=2, long_seeds=1)},
        compare_budget=3,
        batch_seeds={"darts": 2},  # the plumbing of quick's batched DARTS seeds
        notebooks={  # two worker processes for the seeds, as quick has on two cores
            "01": {"jobs": 2}, "02": {"jobs": 2},
            "03": {"frames": 8, "fps": 4},
            "04": {"published_names": ["DARTS_V2"], "jobs": 2},
            "05": {"dim": 3, "second_dim": 2, "runs": 6, "budget": 300, "long_budget": 600},
        }),
    "quick": Profile(
        "quick", "two CPU cores: CIFAR-10 at 8x8, the calibrated protocol (FairDARTS 60 and 300, DSCD 300 and 600)",
        search={"per_class": 50, "test_per_class": 120, "image_size": 8, "channels": 4, "layers": 5,
                "batch_size": 50, "epochs": 30, "alpha_lr": 0.03, "test_every": 5, "checkpoint_minutes": 5.0},
        train={"per_class": 200, "test_per_class": 100, "image_size": 16, "channels": 8, "layers": 8,
               "batch_size": 64, "epochs": 20, "cutout": 8, "lr": 0.05},
        searches={"fairdarts": {60: 3, 300: 5}, "dscd": {300: 5, 600: 3}, "dscd-refresh": {300: 3},
                  "dscd-k15": {300: 5}, "dscd-k15-t5": {300: 5}, "dscd-k3000": {600: 3},
                  **_nas_bench_201_arms(300, 600, seeds=5, long_seeds=3)},
        compare_budget=300,
        # NAS-Bench-201 at quick: the scale chosen by cost (benchmarks/bench_spaces.py) and calibrated
        # (results/calibration/quick-nas-bench-201.json); DSCD's record window K = 15 steps (3 epochs of 5 steps)
        # and T = 5 steps (one epoch), fixed before any DSCD run in this space (results/quick/
        # nas-bench-201-protocol.json says why)
        spaces={"nas-bench-201": {"image_size": 16, "channels": 8, "layers": 3, "dscd_K": 15, "dscd_T": 5}},
        # a DARTS search's seeds (3 or 5 here) in one process, two processes at once: about 2.5x the seed-epochs
        # per CPU-second at 5 seeds (results/benchmarks/batched-quick-cpu2.json); NAS-Bench-201's quick search
        # computes more than it calls, and batching it is slower, so its seeds run alone
        batch_seeds={"darts": 5},
        notebooks={
            "03": {"frames": 60, "fps": 12},
            "04": {"published_names": ["DARTS_V2"]},  # one yardstick: the searches' genotypes fill the time
            "05": _FIGURE3,
        }),
    "paper": Profile(
        "paper", "a GPU: the paper's networks, data and budgets (section 4, Table 1)",
        searches={"fairdarts": {50: 1, 75: 1, 250: 1, 500: 1, 3000: 1}, "dscd": {1500: 1, 2000: 1, 3000: 1},
                  "dscd-refresh": {3000: 1}, **_nas_bench_201_arms(50, 100, seeds=1, long_seeds=1)},
        compare_budget=3000,
        # NAS-Bench-201's own search setting (its section 5): C = 16, N = 5, 50 epochs, batch 64, SGD 0.025 to
        # 0.001 with weight decay 5e-4, Adam on alpha at 3e-4 with betas (0.5, 0.999) and weight decay 1e-3
        spaces={"nas-bench-201": {"channels": 16, "layers": 15, "epochs": 50, "batch_size": 64, "w_lr": 0.025,
                                  "w_lr_min": 0.001, "w_weight_decay": 5e-4, "alpha_lr": 3e-4,
                                  "alpha_betas": (0.5, 0.999), "alpha_weight_decay": 1e-3}},
        notebooks={
            "03": {"frames": 120, "fps": 24},
            "04": {"published_names": []},  # the paper's own published numbers are in Table 2 anyway
            "05": _FIGURE3,
        }),
}


def get_profile(name: str) -> Profile:
    """The profile called ``name``; an unknown name is a ValueError listing the known ones."""
    if name not in PROFILES:
        raise ValueError(f"unknown profile {name!r}: choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
