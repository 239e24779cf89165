"""Many seeds in one process (dscd.batched): the same searches as separate runs, to float32 rounding; an exact
resume after a kill; the command line; refusals."""

import copy
import json
import shutil

import numpy as np
import pytest
import torch

from dscd import cli
from dscd.batched import parse_seeds, run_search_batched, seed_folder
from dscd.search import load_alphas, load_metrics
from dscd.search import run_search as run
from tests.test_search import _strip_times, kill_in_epoch_3, tiny

SEEDS = (0, 1)
#: DSCD with short phases, so that both seeds take local and global steps and one's global phase meets the
#: other's local one within the first epochs; a checkpoint every step, so that a kill lands mid-epoch.
CHANGES = dict(epochs=2, per_class=6, optimizer="dscd", dscd_T=2, dscd_K=3, checkpoint_minutes=1e-9)
#: How far a batched seed's numbers may be from its separate run's after two epochs: a stacked convolution
#: sums in another order (about 1e-7 relative per loss at first), and the difference grows as training goes.
ROUNDING = 1e-4


def configs(**changes):
    return [tiny(seed=seed, **{**CHANGES, **changes}) for seed in SEEDS]


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    """Two seeds searched in one batch, and each alone."""
    root = tmp_path_factory.mktemp("batched")
    run_search_batched(configs(), [seed_folder(root / "batched", s) for s in SEEDS], progress=False)
    for config in configs():
        run(config, root / f"alone-{config.seed}", progress=False)
    return root


def _position(folder):
    state = torch.load(folder / "checkpoint.pt", weights_only=False)
    return state["epoch"], state["batch"]


def _weights(folder):
    return torch.load(folder / "checkpoint.pt", weights_only=False)["searcher"]["net"]


def test_batched_seeds_take_the_decisions_of_separate_runs_to_float32_rounding(searches):
    global_steps = []
    for seed in SEEDS:
        batched, alone = seed_folder(searches / "batched", seed), searches / f"alone-{seed}"
        got, want = load_metrics(batched), load_metrics(alone)
        assert len(got) == len(want) == CHANGES["epochs"]
        for g, w in zip(got, want, strict=True):
            for key in ("alpha_loss", "weight_loss"):  # a stacked convolution sums in another order, and rounding grows
                assert g[key] == pytest.approx(w[key], rel=1e-4), (seed, g["epoch"], key)
            same = ("steps", "lr", "train_acc", "val_acc", "test_acc", "genotype", "valid", "invalid_reason", "best",
                    "kept_edges_normal", "kept_edges_reduce")
            assert {k: g[k] for k in same} == {k: w[k] for k in same}
            decisions = {k: v for k, v in w["dscd"].items() if k != "best_value"}
            assert {k: g["dscd"][k] for k in decisions} == decisions  # every proposal accepted or rejected alike
            assert g["dscd"]["best_value"] == pytest.approx(w["dscd"]["best_value"], rel=ROUNDING)
        global_steps.append([r["dscd"]["global_steps"] for r in got])
        for a, b in zip(load_alphas(batched)[1:], load_alphas(alone)[1:], strict=True):
            np.testing.assert_allclose(a, b, atol=ROUNDING)
        weights = _weights(batched)
        for name, tensor in _weights(alone).items():
            np.testing.assert_allclose(weights[name].float().numpy(), tensor.float().numpy(), atol=ROUNDING,
                                       rtol=10 * ROUNDING, err_msg=name)
        assert json.loads((batched / "config.json").read_text()) == json.loads((alone / "config.json").read_text())
        meta = json.loads((batched / "meta.json").read_text())
        assert meta["batched"] == {"seeds": list(SEEDS), "lane": SEEDS.index(seed)}
    assert global_steps[0] != global_steps[1], "the seeds' phases never differed: the test shows too little"
    assert all(s[-1] > 0 for s in global_steps)


def test_a_killed_batched_search_resumes_to_the_uninterrupted_end(searches, tmp_path):
    """Bit for bit, even when the seeds' checkpoints were not at the same step (the one ahead goes back)."""
    out = tmp_path / "killed"
    outs = [str(seed_folder(out, s)) for s in SEEDS]
    kill_in_epoch_3(f"from tests.test_batched import configs; from dscd.batched import run_search_batched; "
                    f"run_search_batched(configs(), {outs!r}, progress=False)", seed_folder(out, SEEDS[0]), epoch=2)
    assert len(load_metrics(outs[0])) < CHANGES["epochs"], "the search finished before it could be killed"
    first, second = (seed_folder(out, s) for s in SEEDS)
    if _position(first) == _position(second):  # as if the kill had come between the two seeds' checkpoints
        shutil.copyfile(second / "checkpoint.prev.pt", second / "checkpoint.pt")
    assert _position(first) > _position(second)
    run_search_batched(configs(), outs, resume=True, progress=False)
    for seed, folder in zip(SEEDS, outs, strict=True):
        reference = seed_folder(searches / "batched", seed)
        assert _strip_times(load_metrics(folder)) == _strip_times(load_metrics(reference))
        for a, b in zip(load_alphas(folder)[1:], load_alphas(reference)[1:], strict=True):
            assert (a == b).all()


def test_nas_bench_201_with_the_softmax_relaxation_batches_too(tmp_path):
    changes = dict(space="nas-bench-201", relaxation="softmax", optimizer="adam", epochs=1)
    batched = run_search_batched(configs(**changes), [seed_folder(tmp_path, s) for s in SEEDS], progress=False)
    for seed, summary in zip(SEEDS, batched, strict=True):
        alone = run(tiny(seed=seed, **{**CHANGES, **changes}), tmp_path / f"alone-{seed}", progress=False)
        assert summary["genotype"] == alone["genotype"]
        assert summary["final"]["alpha_loss"] == pytest.approx(alone["final"]["alpha_loss"], rel=ROUNDING)
        np.testing.assert_allclose(load_alphas(seed_folder(tmp_path, seed))[1],
                                   load_alphas(tmp_path / f"alone-{seed}")[1], atol=ROUNDING)


def test_the_command_runs_seeds_into_their_folders_and_refuses_bad_ones(tmp_path, capsys):
    out = tmp_path / "runs"
    base = ["search", "--profile", "smoke", "--epochs", "1", "--set", "per_class=10", "--set", "batch_size=10",
            "--set", "layers=3", "--quiet", "--out", str(out)]
    assert cli.main([*base, "--seeds", "3,5"]) == 0
    printed = capsys.readouterr().out
    assert f"{out}/seed-3: 1 epochs" in printed and f"{out}/seed-5: 1 epochs" in printed
    assert sorted(p.name for p in out.iterdir()) == ["seed-3", "seed-5"]
    with pytest.raises(SystemExit) as stop:
        cli.main([*base, "--seeds", "2-1"])
    assert stop.value.code == 2 and "--seeds: seeds must be integers >= 0 and ranges must run upwards" in \
        capsys.readouterr().err
    with pytest.raises(SystemExit) as stop:
        cli.main([*base, "--seeds", "1", "--seed", "2"])
    assert stop.value.code == 2
    assert cli.main([*base, "--seeds", "3,5"]) == 1  # finished folders are never started afresh
    assert "already holds a search run" in capsys.readouterr().err


@pytest.mark.parametrize("text,seeds", [("0-4", [0, 1, 2, 3, 4]), ("0,2,7", [0, 2, 7]), ("0-1, 9", [0, 1, 9])])
def test_seeds_are_read_as_ranges_and_lists(text, seeds):
    assert parse_seeds(text) == seeds


@pytest.mark.parametrize("text,match", [("a", "integers"), ("3-1", "upwards"), ("1,1", "distinct"), ("-1", "integers")])
def test_bad_seeds_are_refused(text, match):
    with pytest.raises(ValueError, match=match):
        parse_seeds(text)


def test_seeds_of_different_configurations_are_refused(tmp_path):
    mixed = [tiny(seed=0), tiny(seed=1, channels=4)]
    with pytest.raises(ValueError, match="also differ in channels"):
        run_search_batched(mixed, [tmp_path / "a", tmp_path / "b"], progress=False)
    with pytest.raises(ValueError, match="distinct"):
        run_search_batched([tiny(seed=0), tiny(seed=0)], [tmp_path / "a", tmp_path / "b"], progress=False)
    with pytest.raises(ValueError, match="its own run folder"):
        run_search_batched([tiny(seed=0), tiny(seed=1)], [tmp_path / "a", tmp_path / "a"], progress=False)
    assert not any(tmp_path.iterdir())  # refused before any folder was made


def test_the_executor_batches_seeds_of_one_search_and_reuses_them(tmp_path):
    from dscd.executors import Job, LocalExecutor, execute, seed_batches

    jobs = [Job(tmp_path / f"s{seed}", tiny(seed=seed, epochs=1, per_class=6).to_dict()) for seed in (0, 1, 2)]
    other = Job(tmp_path / "other", tiny(seed=0, epochs=1, channels=4).to_dict())
    assert seed_batches([*jobs, other], 2) == [[0, 2], [1], [3]]  # 3 seeds at most 2 to a batch: 2 and 1
    assert seed_batches([*jobs, other], 0) == [[0], [1], [2], [3]]
    summaries = execute(jobs[:2], LocalExecutor(jobs=1, batch_seeds=2))
    for job, summary in zip(jobs[:2], summaries, strict=True):
        assert json.loads((job.folder / "meta.json").read_text())["batched"]["seeds"] == [0, 1]
        assert summary["folder"] == str(job.folder)
    stamps = [(job.folder / "summary.json").stat().st_mtime_ns for job in jobs[:2]]
    execute(jobs[:2], LocalExecutor(jobs=1, batch_seeds=2))  # finished: reused, not run again
    assert stamps == [(job.folder / "summary.json").stat().st_mtime_ns for job in jobs[:2]]
    with pytest.raises(ValueError, match="batch_seeds must be an integer >= 0"):
        LocalExecutor(batch_seeds=-1)


def test_a_seed_whose_loss_turns_non_finite_stops_alone(tmp_path, monkeypatch):
    from dscd.search import SearchDiverged, Searcher

    original = Searcher.loss

    def poisoned(self, logits, y):
        loss = original(self, logits, y)
        return loss * float("nan") if self.config.seed == 1 else loss

    monkeypatch.setattr(Searcher, "loss", poisoned)
    outs = [seed_folder(tmp_path, s) for s in SEEDS]
    with pytest.raises(SearchDiverged, match=r"seed 1: non-finite .* in epoch 1.*\(the other seeds finished\)"):
        run_search_batched(configs(optimizer="adam", epochs=1), outs, progress=False)
    assert (outs[0] / "summary.json").is_file() and not (outs[1] / "summary.json").exists()
    assert len(load_metrics(outs[0])) == 1 and load_metrics(outs[1]) == []


@pytest.mark.parametrize("size", [2, 3, 4, 8, 9])
def test_small_image_layers_match_the_native_ones(size):
    """The batched skeleton's depthwise convolutions and average poolings as matrix products: the same outputs
    and gradients as PyTorch's layers, at every stride, padding and dilation the search spaces use."""
    from dscd.batched import _vmap_friendly

    torch.manual_seed(size)
    layers = [torch.nn.Conv2d(6, 6, k, s, d * (k - 1) // 2, dilation=d, groups=6, bias=False)
              for k in (3, 5) for s in (1, 2) for d in (1, 2)]
    layers += [torch.nn.AvgPool2d(3, s, 1, count_include_pad=c) for s in (1, 2) for c in (False, True)]
    layers += [torch.nn.AvgPool2d(2, 2)]
    for layer in layers:
        native = torch.nn.Sequential(layer)
        matrix = _vmap_friendly(torch.nn.Sequential(copy.deepcopy(layer)))
        assert type(matrix[0]) is not type(layer), layer  # the skeleton swaps it
        x = torch.randn(3, 6, size, size, requires_grad=True)
        expected, got = native(x), matrix(x)
        assert got.shape == expected.shape
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)
        grad = torch.randn_like(expected)
        inputs = [x, *native.parameters()]
        for a, b in zip(torch.autograd.grad(expected, inputs, grad),
                        torch.autograd.grad(got, [x, *matrix.parameters()], grad), strict=True):
            torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)
