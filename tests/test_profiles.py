"""Profiles: one registry entry per scale, read by the configurations, the jobs, the CLI and dscd reproduce."""

import json
from pathlib import Path

import pytest

from dscd import cli
from dscd.paper.experiments import planned_searches
from dscd.profiles import METHODS, PROFILES, Profile, config_method, get_profile, method_id
from dscd.search import search_profile
from dscd.train import train_profile

ROOT = Path(__file__).resolve().parents[1]


def test_adding_a_profile_is_one_entry(monkeypatch, tmp_path):
    tiny = Profile("tiny", "a test's own scale", search={**PROFILES["smoke"].search, "channels": 4},
                   train=dict(PROFILES["smoke"].train), searches={"fairdarts": {2: 3, 5: 1}, "dscd": {5: 2}},
                   compare_budget=5, notebooks={"03": {"frames": 2}}, batch_seeds={"darts": 3})
    monkeypatch.setitem(PROFILES, "tiny", tiny)
    assert search_profile("tiny").channels == 4 and search_profile("tiny").profile == "tiny"
    assert train_profile("tiny", epochs=1).epochs == 1
    jobs = planned_searches("tiny", "fairdarts", tmp_path)
    assert [(j.folder.name, j.config["epochs"], j.config["seed"]) for j in jobs] == [
        ("adam-2-s0", 2, 0), ("adam-2-s1", 2, 1), ("adam-2-s2", 2, 2), ("adam-5-s0", 5, 0)]
    assert [j.folder.name for j in planned_searches("tiny", "dscd", tmp_path, seeds=[7])] == ["dscd-5-s7"]
    # a notebook's own budgets: one the profile plans keeps its seeds, another gets the most-seeded budget's count
    assert [j.folder.name for j in planned_searches("tiny", "fairdarts", tmp_path, budgets=[5, 9])] == [
        "adam-5-s0", "adam-9-s0", "adam-9-s1", "adam-9-s2"]
    args = cli.build_parser().parse_args(["reproduce", "--profile", "tiny"])  # the CLI's choices follow
    assert args.profile == "tiny"
    assert get_profile("tiny").notebook_parameters("03") == {"frames": 2}
    assert get_profile("tiny").seeds_per_process("darts") == 3  # seeds per process: where named, else each alone
    assert get_profile("tiny").seeds_per_process("nas-bench-201") == 0


def test_a_profile_refuses_what_cannot_run():
    with pytest.raises(ValueError, match="compare_budget 9 must be a budget of both fairdarts and dscd; dscd lacks"):
        Profile("x", "", searches={"fairdarts": {9: 1}, "dscd": {8: 1}}, compare_budget=9)
    with pytest.raises(ValueError, match="unknown method"):
        Profile("x", "", searches={"adam": {9: 1}})
    with pytest.raises(ValueError, match="number of seeds >= 1"):
        Profile("x", "", searches={"fairdarts": {9: 0}})
    with pytest.raises(ValueError, match="batch_seeds must map a search space to a number of seeds >= 0"):
        Profile("x", "", batch_seeds={"darts": -1})
    with pytest.raises(ValueError, match="has no dscd search of 7 epochs"):
        get_profile("smoke").seeds("dscd", 7)
    with pytest.raises(ValueError, match="unknown profile 'huge': choose one of smoke, quick, paper"):
        get_profile("huge")


def test_method_ids_and_their_configurations_agree():
    for method, changes in METHODS.items():
        assert config_method(search_profile("smoke", **changes).to_dict()) == method
    assert method_id("adam", refresh_best=True) == "fairdarts"
    # the window arms: named and labelled by their method; quick's own K and T stay plain DSCD
    from dscd.paper.claims import config_label
    from dscd.paper.experiments import planned_searches

    names = [job.folder.name for job in planned_searches("quick", "dscd-k15-t5", "runs")]
    assert names == [f"dscd-k15-t5-300-s{seed}" for seed in range(5)]
    assert config_label(search_profile("quick", optimizer="dscd", dscd_K=15, epochs=300).to_dict()) == \
        "FairDARTS + DSCD, K=15 (300)"
    assert config_method(search_profile("quick", optimizer="dscd", dscd_K=1000).to_dict()) == "dscd"
    assert [job.folder.name for job in planned_searches("quick", "fairdarts", "r")][0] == "adam-60-s0"


def test_quick_is_the_protocol_the_calibration_chose():
    """The committed calibration's rule chose a configuration and two FairDARTS budgets; quick is that."""
    chosen = json.loads((ROOT / "results" / "calibration" / "quick.json").read_text())["protocol"]["chosen"]
    quick = get_profile("quick")
    config = search_profile(quick.name)
    assert all(getattr(config, k) == v for k, v in chosen["changes"].items())
    assert quick.budgets("fairdarts") == [chosen["short_budget"], chosen["long_budget"]]
    assert quick.compare_budget == chosen["long_budget"]
    assert min(quick.budgets("dscd")) == quick.compare_budget and max(quick.budgets("dscd")) >= 2 * quick.compare_budget
    for method in ("fairdarts", "dscd"):  # 5 against 5: Fisher's exact test can reach p = 0.008
        assert len(quick.seeds(method, quick.compare_budget)) >= 5
    assert config.test_per_class * 10 >= 1000  # Search Test: a standard error of at most ~1.5 points
