"""Every figure the notebooks publish, rendered from a tiny record set: its legend says what each encoding
means, its labels are the ones the captions promise, and nothing is drawn outside the canvas."""

import json

import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402

from dscd.paper import plots  # noqa: E402
from tests.test_claims import fake_search  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _records(folder):
    return [json.loads(line) for line in (folder / "metrics.jsonl").read_text().splitlines()]


def _legend_texts(fig):
    return [t.get_text() for legend in [*fig.legends, *(ax.get_legend() for ax in fig.axes)] if legend
            for t in legend.get_texts()]


def _inside_canvas(fig, artist):
    """The artist's drawn box lies within the figure's (a clipped label does not)."""
    fig.canvas.draw()
    box, canvas = artist.get_window_extent(), fig.bbox
    return box.x0 >= canvas.x0 - 1 and box.y0 >= canvas.y0 - 1 and box.x1 <= canvas.x1 + 1 and box.y1 <= canvas.y1 + 1


def _edges_blank(fig):
    """Nothing drawn on the canvas' outermost pixels: a label cut by the edge leaves ink there."""
    fig.canvas.draw()
    pixels = np.asarray(fig.canvas.buffer_rgba())[..., :3]
    edges = np.concatenate([pixels[:2].reshape(-1, 3), pixels[-2:].reshape(-1, 3), pixels[:, :2].reshape(-1, 3),
                            pixels[:, -2:].reshape(-1, 3)])
    return bool((edges > 250).all())


def _overlaps_an_axes(fig, legend):
    fig.canvas.draw()
    box = legend.get_window_extent()
    return any(box.overlaps(ax.get_window_extent()) for ax in fig.axes)


@pytest.fixture(scope="module")
def searches(tmp_path_factory):
    root = tmp_path_factory.mktemp("records")
    fairdarts = [_records(fake_search(root, "adam", 12, s, valid=s == 0, test_acc=0.3)) for s in range(2)]
    dscd = [_records(fake_search(root, "dscd", 12, s, valid=True, test_acc=0.3, stuck=s == 1)) for s in range(2)]
    return fairdarts, dscd


def test_figure_1_names_the_cells_the_threshold_and_the_grey_shading(searches):
    fairdarts, _ = searches
    fig = plots.plot_cell_weights([("FairDARTS (12)", fairdarts)])
    legend = _legend_texts(fig)
    assert "normal cell (thick: mean of seeds)" in legend and "reduction cell (thick: mean of seeds)" in legend
    assert "threshold 0.85" in legend
    assert any(t.startswith("grey: epochs with an invalid normal cell") for t in legend)
    assert not any("x_best" in t for t in legend)  # no DSCD rows, no DSCD key
    assert [ax.get_ylabel() for ax in fig.axes[:2]] == ["mean cell weight", "edges kept (discretised)"]
    assert fig.axes[0].get_title() == "FairDARTS (12), 2 seeds"
    assert not _overlaps_an_axes(fig, fig.legends[0])


def test_figure_2_keys_row_3s_dots_and_row_4s_colours(searches):
    fairdarts, dscd = searches
    fig = plots.plot_cell_weights([("FairDARTS + DSCD (12)", dscd), ("FairDARTS (12)", fairdarts)])
    legend = _legend_texts(fig)
    assert any(t.startswith("x_best age where alpha sits at x_best") for t in legend)
    assert "global phases begun (thick: mean of seeds)" in legend
    assert "global phases with an acceptance (thick: mean of seeds)" in legend
    assert any(t.startswith("grey: epochs with an invalid normal cell") for t in legend)
    assert fig.axes[0].get_ylabel() == "mean cell weight"
    labels = {ax.get_ylabel() for ax in fig.axes}
    assert {"x_best age (epochs)", "global phases (cumulative)"} <= labels
    assert not _overlaps_an_axes(fig, fig.legends[0])


def test_dscd_steps_legend_names_both_objectives(searches):
    _, dscd = searches
    fig = plots.plot_dscd_steps([("FairDARTS + DSCD (12)", dscd)])
    legend = _legend_texts(fig)
    assert "accepted, normal cell (thick: mean of seeds)" in legend
    assert "y_best (window minimum) (thick: mean of seeds)" in legend
    assert fig.axes[0].get_ylabel() == "proposals accepted per epoch"


def _summary(name):
    curve = np.geomspace(100.0, 1.0, 20)
    methods = {m: {"label": label, "median": list(curve), "ci_lower": list(curve / 2), "ci_upper": list(curve * 2)}
               for m, label in (("adam_0.01", "Adam 0.01"), ("adam_0.01+dscd", "Adam 0.01 + DSCD"),
                                ("cmaes", "CMA-ES"))}
    return {"function": {"name": name, "dim": 2, "f_min": 0.0}, "config": {"runs": 3}, "methods": methods}


def test_figure_3_titles_the_functions_as_the_paper_and_draws_adam_alone_above_dscd():
    fig = plots.plot_benchmark([_summary("styblinski_tang"), _summary("rotated_schwefel")])
    assert [ax.get_title() for ax in fig.axes] == ["Styblinski-Tang, d = 2 (3 runs)",
                                                   "Schwefel (rotated), d = 2 (3 runs)"]
    assert _legend_texts(fig) == ["Adam 0.01", "Adam 0.01 + DSCD", "CMA-ES"]
    lines = {line.get_label(): line for line in fig.axes[0].get_lines()}
    alone, with_dscd = lines["Adam 0.01"], lines["Adam 0.01 + DSCD"]
    # identical curves (DSCD never accepted): the dashed one is drawn over the solid one, and is thinner
    assert alone.get_linestyle() == "--" and with_dscd.get_linestyle() == "-"
    assert alone.get_zorder() > with_dscd.get_zorder() and alone.get_linewidth() < with_dscd.get_linewidth()
    assert lines["CMA-ES"].get_linewidth() == alone.get_linewidth()  # only Adam + DSCD is drawn wide


def test_learning_curves_legend_sits_below_the_panels():
    runs = [(f"genotype {k}", [{"epoch": e, "train_loss": 3 - e / 10, "train_acc": e / 30, "test_acc": e / 25}
                               for e in range(1, 11)]) for k in range(10)]
    fig = plots.plot_learning_curves(runs)
    assert _legend_texts(fig) == [f"genotype {k}" for k in range(10)]
    assert not _overlaps_an_axes(fig, fig.legends[0])
    assert _inside_canvas(fig, fig.legends[0])
    assert fig.axes[1].get_title() == "test (solid) and training (dashed) accuracy"


def test_genotype_drawing_keys_ops_by_colour_with_no_label_on_an_arc():
    from dscd.genotype import draw_genotype, load_genotype

    genotype = load_genotype("DARTS_V2")
    fig = draw_genotype(genotype, title="DARTS_V2")
    ops = sorted({op for cell in ("normal", "reduce") for op, _, _ in genotype.cell(cell)})
    assert _legend_texts(fig) == [*ops, "into the output (concatenated)"]
    for ax in fig.axes:  # only node names are written inside the cells
        assert not {t.get_text() for t in ax.texts} & set(ops)
    assert _inside_canvas(fig, fig.legends[0])


def test_beta_annealing_figures_keep_their_labels_inside(tmp_path, monkeypatch):
    fig = plots.plot_beta_annealing(phis=(0.0, 0.5, 0.9))
    assert fig.axes[0].get_xlabel() == "proposed value" and fig.axes[0].get_ylabel() == "density"
    fig = plots.plot_phi_schedule(total=50)
    assert fig.axes[0].get_xlabel() == "fraction of the step budget"
    closed = []
    monkeypatch.setattr(plots.plt, "close", closed.append)  # keep the animation's figure to inspect
    written = plots.animate_beta_annealing(tmp_path / "beta", frames=2, fps=2)
    assert written[0].suffix == ".gif" and written[0].stat().st_size > 0
    (animated,) = closed
    ax = animated.axes[0]
    assert ax.get_xlabel() == "proposed value"
    assert _edges_blank(animated)


def test_nas_bench_201_figures_name_each_arm():
    table = np.linspace(10.0, 90.0, 200)
    points = [("DARTS (300)", 40.0), ("DARTS (300)", 60.0), ("DARTS + DSCD (300)", 70.0)]
    fig = plots.plot_found_cells(points, table, ("all-skip cell", 36.8), title="found cells")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["all cells", "DARTS (300)", "DARTS + DSCD (300)"]
    assert ax.get_ylabel() == "CIFAR-10 test % (NAS-Bench-201, 12-epoch)"
    assert "all-skip cell" in [t.get_text() for t in ax.texts]
    fig = plots.plot_accuracy_over_search([("DARTS (300)", [[40, 50, 55], [30, 35]]), ("DARTS + DSCD (300)", [[60]])])
    assert _legend_texts(fig) == ["DARTS (300) (2 seeds)", "DARTS + DSCD (300) (1 seed)"]
    assert fig.axes[0].get_xlabel() == "epoch"


def test_a_saved_pdf_records_no_creation_date(tmp_path):
    """So the same figure gives the same bytes, and a republished regeneration changes only what changed."""
    png, pdf = plots.save_figure(plots.plot_phi_schedule(total=20), tmp_path / "phi")
    assert pdf.suffix == ".pdf" and b"/CreationDate" not in pdf.read_bytes()
