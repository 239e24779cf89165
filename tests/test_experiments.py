"""Tables 1 and 2 assembled from search folders and trainings (invalid genotypes, published rows, reuse)."""

import csv
import json
from pathlib import Path

import pytest

from dscd.genotype import Genotype
from dscd.paper.experiments import PAPER_TABLE2, table1_rows, table2_rows, train_genotypes
from dscd.paper.tables import write_table

ROOT = Path(__file__).resolve().parents[1]
REFERENCE = ROOT.parent / "shared" / "reference" / "genotypes.json"
VALID = Genotype(normal=(("sep_conv_3x3", 0, 2), ("skip_connect", 1, 2)), reduce=(("max_pool_3x3", 0, 2),))
EMPTY = Genotype(normal=(), reduce=())
TINY = dict(epochs=1, per_class=4, test_per_class=2, batch_size=8, channels=4, layers=3, image_size=8, cutout=4)


def _search(folder: Path, optimizer: str, epochs: int, genotype: Genotype, accuracy: float) -> Path:
    """A finished search folder as dscd.search.run leaves it (only what the tables read)."""
    folder.mkdir(parents=True)
    genotype.save(folder / "genotype.json")
    valid = genotype.is_valid()
    final = {"train_acc": accuracy, "val_acc": accuracy - 0.05, "test_acc": accuracy - 0.04, "valid": valid,
             "mean_weight_normal": 0.2, "mean_weight_reduce": 0.5, "kept_edges_normal": len(genotype.normal),
             "kept_edges_reduce": len(genotype.reduce)}
    (folder / "summary.json").write_text(json.dumps({"config": {"optimizer": optimizer, "epochs": epochs},
                                                     "final": final, "valid": valid}))
    return folder


def test_tables_one_and_two_from_searches_trainings_and_published_genotypes(tmp_path):
    searches = [_search(tmp_path / "runs" / "adam-50", "adam", 50, EMPTY, 0.8202),
                _search(tmp_path / "runs" / "dscd-1500", "dscd", 1500, VALID, 0.9)]
    evaluations = train_genotypes("smoke", searches, tmp_path / "runs", REFERENCE, ["DARTS_V2"], TINY,
                                  progress=False)
    assert [e.label for e in evaluations] == ["FairDARTS (50)", "FairDARTS + DSCD (1500)",
                                             "DARTS_V2 (published genotype)"]
    refused, trained, published = evaluations
    assert refused.summary is None and "normal cell" in refused.invalid_reason and not refused.folder.exists()
    assert trained.folder == tmp_path / "runs" / "train" / "dscd-1500"
    assert published.folder == tmp_path / "runs" / "train" / "published-DARTS_V2"
    assert isinstance(trained.eval_test, float) and refused.eval_test == "Invalid arch."

    rows1 = table1_rows(searches, evaluations)
    assert [r["Method"] for r in rows1] == ["FairDARTS (50)", "FairDARTS + DSCD (1500)"]
    assert rows1[0]["Split for L_train"] == 82.02 and rows1[0]["Final Arch."] == "Invalid arch."
    assert rows1[0]["Eval. Test"] == "Invalid arch." and rows1[1]["Eval. Test"] == trained.eval_test
    assert (rows1[0]["Eval. Test (paper)"], rows1[1]["Eval. Test (paper)"]) == (97.36, 97.5)
    assert list(rows1[0])[-1] == "run" and rows1[1]["run"] == "dscd-1500"
    assert "Eval. Test" not in table1_rows(searches)[0]  # the search notebooks' rows

    rows2 = table2_rows(evaluations, "smoke: tiny")
    measured, paper = rows2[:2], rows2[2:]
    assert [r["Method"] for r in measured] == ["FairDARTS + DSCD (1500)", "DARTS_V2 (published genotype)"]
    assert measured[1]["Params (M)"] == 3.35 and measured[1]["FLOPS (M)"] == 528  # C=36, 20 cells, as published
    assert all(r["Source"] == "measured here (smoke: tiny)" for r in measured)
    assert [(r["Method"], r["Params (M)"], r["FLOPS (M)"], r["Accuracy (%)"]) for r in paper] == PAPER_TABLE2
    assert all(r["Source"].startswith("published") for r in paper)

    md, csv_path = write_table(rows1, tmp_path / "tables" / "table1")
    assert "| Invalid arch. |" in md.read_text()
    with open(csv_path, newline="") as fh:
        assert [r["Eval. Test"] for r in csv.DictReader(fh)][0] == "Invalid arch."

    # finished trainings are reused, not redone
    before = (trained.folder / "summary.json").stat().st_mtime_ns
    again = train_genotypes("smoke", searches, tmp_path / "runs", REFERENCE, ["DARTS_V2"], TINY, progress=False)
    assert (trained.folder / "summary.json").stat().st_mtime_ns == before
    assert [e.eval_test for e in again] == [e.eval_test for e in evaluations]

    # DSCD's x_best genotype instead of its final one, in a folder of its own
    EMPTY.save(searches[1] / "genotype_best.json")
    best = train_genotypes("smoke", searches, tmp_path / "runs", overrides=TINY, progress=False,
                           dscd_genotype="best")
    assert best[1].label == "FairDARTS + DSCD (1500) x_best" and best[1].eval_test == "Invalid arch."
    assert best[1].folder == tmp_path / "runs" / "train" / "dscd-1500-best" and best[0].label == "FairDARTS (50)"
    with pytest.raises(ValueError, match="dscd_genotype must be"):
        train_genotypes("smoke", searches, tmp_path / "runs", dscd_genotype="x")

    with pytest.raises(ValueError, match="no genotype named NOPE"):
        train_genotypes("smoke", searches, tmp_path / "runs", REFERENCE, ["NOPE"], TINY, progress=False)
