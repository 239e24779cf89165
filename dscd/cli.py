"""The ``dscd`` command: thin subcommands that parse, call the library and report."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from dscd.profiles import PROFILES
from dscd.version import __version__

if TYPE_CHECKING:
    from dscd.config import RunConfig

#: Which extra brings an optional package (pyproject.toml's optional-dependencies).
_EXTRAS = {"matplotlib": "notebooks", "seaborn": "notebooks", "papermill": "notebooks", "nbformat": "notebooks",
           "nbconvert": "notebooks", "ipykernel": "notebooks", "sklearn": "notebooks", "scipy": "bench",
           "cma": "bench", "onnx": "export", "onnxruntime": "export", "onnxscript": "export",
           "tensorboard": "tensorboard", "ray": "ray"}


class UsageError(Exception):
    """A bad command-line value: printed with the option's name, exit code 2."""


def _output_path(path: str | Path, option: str) -> Path:
    """``path`` as a place to write into (a folder, or a file whose folder exists), checked before any work."""
    from dscd.runfolder import RunFolderError, check_output_path

    try:
        return check_output_path(path, option)
    except RunFolderError as err:
        raise UsageError(str(err)) from None


def _output_file(path: str | Path, option: str) -> Path:
    """A file to write: its folder must exist (or be creatable under folders) and it must not be a folder."""
    path = Path(path)
    if path.is_dir():
        raise UsageError(f"{option} {path} is a folder: give a file name")
    _output_path(path.parent, option)
    return path


def _cmd_animate(args: argparse.Namespace) -> int:
    from dscd.paper.plots import animate_beta_annealing

    _output_file(args.out, "--out")
    try:
        paths = animate_beta_annealing(args.out, v=args.v, frames=args.frames, fps=args.fps,
                                       domain=(args.lo, args.hi), phi_end=args.phi_end)
    except ValueError as err:
        raise UsageError(str(err)) from None
    for path in paths:
        print(f"wrote {path}")
    return 0


def _cmd_reproduce(args: argparse.Namespace) -> int:
    from dscd.paper.reproduce import NotebookFailed, reproduce

    _output_path(args.outputs, "--outputs")
    if args.publish:
        if args.only:
            raise UsageError("--publish copies a whole regeneration's results: run it without --only")
        _output_path(args.results, "--results")
    if args.jobs is not None and args.jobs < 1:
        raise UsageError(f"--jobs must be >= 1, got {args.jobs}")
    devices = None
    if args.devices:
        from dscd.executors import check_devices

        try:
            devices = [int(d) for d in _split([args.devices])]
        except ValueError:
            raise UsageError(f"--devices takes GPU indices such as 0,1; got {args.devices!r}") from None
        try:
            devices = check_devices(devices)
        except ValueError as err:
            raise UsageError(f"--devices: {err}") from None
    if args.executor == "ray":
        import importlib.util

        if importlib.util.find_spec("ray") is None:
            raise UsageError("--executor ray needs Ray: pip install 'dscd[ray]'")
    elif args.address:
        raise UsageError("--address names a Ray cluster: use it with --executor ray")
    if args.batch_seeds is not None and args.batch_seeds < 0:
        raise UsageError(f"--batch-seeds must be >= 0 (0: every search in its own process), got {args.batch_seeds}")
    execution = {"executor": args.executor, "address": args.address, "jobs": args.jobs, "devices": devices,
                 "batch_seeds": args.batch_seeds}
    outputs, kept = Path(args.outputs) / args.profile, Path(args.results) / args.profile
    if args.reuse_runs:
        from dscd.paper.report import restore_runs

        restored = restore_runs(kept, outputs)
        print(f"put back {len(restored)} kept searches from {kept / 'runs'}")
    from contextlib import nullcontext

    from dscd.paper.report import KeptRuns

    # finished searches are kept every minute while the notebooks run, and at the end whatever happened
    keeping = KeptRuns(outputs, kept) if args.keep_runs else nullcontext()
    try:
        with keeping:
            runs = reproduce(profile=args.profile, only=args.only, outputs=args.outputs, ablations=args.all,
                             notebooks_dir=args.notebooks, progress=not args.quiet, force=args.force,
                             execution=execution)
    except (ValueError, FileNotFoundError) as err:
        raise UsageError(str(err)) from None
    except NotebookFailed as err:
        print(f"dscd reproduce: {err}", file=sys.stderr)
        return 1
    finally:
        if isinstance(keeping, KeptRuns):
            print(f"kept {len(keeping.kept)} more finished searches in {kept / 'runs'}")
    for run in runs:
        how = "skipped, up to date (last run" if run.status == "skipped" else "ran in"
        print(f"{run.notebook}: {how} {run.seconds:.1f} s{')' if run.status == 'skipped' else ''} -> {run.output}")
    if runs:
        print(f"index: {Path(runs[0].output).parents[1] / 'index.html'}")
    if args.publish:
        from dscd.paper.report import publish

        written = publish(Path(args.outputs) / args.profile, Path(args.results) / args.profile)
        print(f"published {len(written)} result files into {Path(args.results) / args.profile}; "
              "dscd report renders the README and docs from them")
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from dscd.paper.report import default_files, render

    root = Path(args.root)
    if not (root / "results").is_dir():
        raise UsageError(f"--root {root} has no results/ folder: give the repository's root (where results/ and "
                         "README.md are)")
    files = [Path(f) for f in args.files] if args.files else default_files(root)
    missing = [str(f) for f in files if not f.is_file()]
    if missing:
        raise UsageError(f"no such file: {', '.join(missing)}")
    changed = render(files, root, check=args.check)
    if args.check:
        for path in changed:
            print(f"dscd report: {path} is out of date with the result files: run dscd report", file=sys.stderr)
        return 1 if changed else 0
    for path in changed:
        print(f"rendered {path}")
    if not changed:
        print(f"up to date: {', '.join(str(f) for f in files)}")
    return 0


def _split(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def _cmd_bench(args: argparse.Namespace) -> int:
    from dscd.paper.figure3 import ALL_METHODS, BenchConfig, run_benchmark, summarise, summary_table, write_results

    functions = _split(args.function) or ["styblinski_tang", "schwefel"]
    if args.rotated:
        functions = [f if f.startswith("rotated_") else f"rotated_{f}" for f in functions]
    methods = tuple(_split(args.methods)) or ALL_METHODS
    try:  # every option is checked before any work starts or anything is written
        configs = [BenchConfig(function=f, dim=args.dim, runs=args.runs, budget=args.budget, methods=methods,
                               seed=args.seed) for f in functions]
    except ValueError as err:
        raise UsageError(str(err)) from None
    _output_path(args.out, "--out")
    results = []
    for cfg in configs:
        print(f"{cfg.function}, d={cfg.dim}: {len(cfg.methods)} methods x {cfg.runs} runs x {cfg.budget} evaluations",
              flush=True)
        results.append(run_benchmark(cfg, progress=not args.quiet))
        print(summary_table(summarise(results[-1], include_curves=False)), flush=True)
    out = write_results(results, args.out)
    print(f"wrote {out / 'results.json'}, {out / 'curves.npz'}, {out / 'figure.png'}, {out / 'figure.pdf'}")
    return 0


def _nas_bench_201_cell(text: str) -> Any:
    """A NAS-Bench-201 cell from a cell string, an index, or a run folder whose ``genotype.json`` holds one;
    ``None`` when ``text`` is none of these shapes (so it is a DARTS genotype)."""
    from dscd.nas_bench_201 import Cell, CellStringError, lookup

    folder = Path(text)
    if folder.is_dir():
        path = folder / "genotype.json"
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError):
            raise UsageError(f"{folder} holds no readable genotype.json: give a finished NAS-Bench-201 search's "
                             "folder, a cell string or an index") from None
        if not isinstance(data, dict) or data.get("space") != "nas-bench-201" or "cell" not in data:
            raise UsageError(f"{path} is not a NAS-Bench-201 cell (a search of another space): dscd lookup reads "
                             "NAS-Bench-201 searches")
        text = data["cell"]
    if text.strip().isdigit():
        try:
            return lookup(int(text)).cell
        except CellStringError as err:
            raise UsageError(str(err)) from None
    if "~" not in text and "|" not in text:
        return None
    try:
        return Cell.from_string(text)
    except CellStringError as err:
        raise UsageError(str(err)) from None


def _cmd_lookup(args: argparse.Namespace) -> int:
    from dscd.nas_bench_201 import COLUMNS, DATASETS, lookup

    cell = _nas_bench_201_cell(args.cell)
    if cell is None:
        raise UsageError(f"{args.cell!r} is not a NAS-Bench-201 cell string (like |nor_conv_3x3~0|+|...|), an "
                         "index or a NAS-Bench-201 search's folder")
    found = lookup(cell)
    if args.json:
        print(json.dumps(found.to_dict(), indent=2))
        return 0
    shape = ("empty cell: every edge is none" if cell.empty else
             "no path from the cell's input to its output" if not cell.connected else
             f"{cell.parameterised_edges} of 6 edges parameterised")
    print(f"NAS-Bench-201 cell {found.index}: {cell.to_string()} ({shape})")
    print(f"{'dataset':<16} {'test (%)':>9} {'valid (%)':>10} {'rank':>16} {'percentile':>11}   (12-epoch results)")
    for dataset, column in DATASETS.items():
        valid = COLUMNS[COLUMNS.index(column) + 1]
        print(f"{dataset:<16} {found.accuracy[column]:>9.2f} {found.accuracy[valid]:>10.2f} "
              f"{found.rank[dataset]:>6,} of 15,625 {found.percentile[dataset]:>10.2f}")
    return 0


def _cmd_describe(args: argparse.Namespace) -> int:
    from dscd.eval_network import genotype_size
    from dscd.genotype import GenotypeError, check_validity, draw_genotype, load_genotype, load_genotypes

    for option, value, minimum in (("--channels", args.channels, 2), ("--layers", args.layers, 3),
                                   ("--image-size", args.image_size, 8)):
        if value < minimum:
            raise UsageError(f"{option} must be at least {minimum}, got {value}")
    cell = None if Path(args.genotype).is_file() else _nas_bench_201_cell(args.genotype)
    if cell is not None:
        from dscd.nas_bench_201_network import cell_size

        benchmark = cell_size(cell)  # the benchmark's size: C = 16, N = 5, 32x32, 10 classes
        print(f"NAS-Bench-201 cell {cell.to_string()}: {benchmark.params:,} params, {benchmark.flops_m:.2f} M FLOPs "
              f"(the benchmark's network: C=16, N=5 cells per stage, 32x32 input, 10 classes); "
              f"{cell.parameterised_edges} of 6 edges parameterised")
        return 0
    if args.plot:
        plot = _output_file(args.plot, "--plot")
        if not plot.parent.is_dir():
            raise UsageError(f"--plot {plot}: the folder {plot.parent} does not exist; create it first")
    try:
        genotypes = ({args.name: load_genotype(args.genotype, args.name)} if args.name
                     else load_genotypes(args.genotype))
    except GenotypeError as err:
        raise UsageError(str(err)) from None
    if args.plot and len(genotypes) != 1:
        raise UsageError(f"--plot draws one genotype; {args.genotype} holds {len(genotypes)}: add --name")
    print(f"{'genotype':<14} {'style':<10} {'params (M)':>10} {'with aux':>9} {'FLOPs (M)':>10}  cells "
          f"(C={args.channels}, {args.layers} cells, {args.image_size}x{args.image_size} input)")
    for name, g in genotypes.items():
        validity = check_validity(g)
        if validity.valid:
            size = genotype_size(g, channels=args.channels, layers=args.layers, image_size=args.image_size)
            numbers = f"{size.params_m:>10.3f} {size.params_with_aux_m:>9.3f} {size.flops_m:>10.1f}"
        else:
            numbers = f"{'Invalid arch.':>31}"
        print(f"{name:<14} {g.style:<10} {numbers}  normal {len(g.normal)} ops, reduce {len(g.reduce)} ops"
              + ("" if validity.valid else f"  ({validity.message()})"))
    if args.plot:
        import matplotlib.pyplot as plt

        name, g = next(iter(genotypes.items()))
        fig = draw_genotype(g, title=name)
        fig.savefig(args.plot, dpi=150, bbox_inches="tight")
        plt.close(fig)
        print(f"wrote {args.plot}")
    return 0


def _parse_set(items: list[str] | None) -> dict:
    """``--set key=value`` pairs, each value read as YAML exactly as in a configuration file."""
    from dscd.config import parse_assignment

    return dict(parse_assignment(item) for item in items or [])


def _configure(args: argparse.Namespace, config_class: type[RunConfig], choose: Callable[..., Any],
               options: Sequence[str]) -> Any:
    """The configuration of ``--config`` or ``--profile``, then ``--set`` values, then the named options."""
    try:
        changes = _parse_set(args.set)
        for name in options:
            if getattr(args, name) is not None:
                changes[name] = getattr(args, name)
        if args.config:
            return config_class.from_file(args.config).replace(**changes)
        return choose(args.profile, **changes)  # a profile's scale can depend on the changes (a search's space)
    except (ValueError, TypeError) as err:
        raise UsageError(str(err)) from None


def _cmd_search(args: argparse.Namespace) -> int:
    from dscd.search import SearchConfig, run_search, search_profile

    if args.seeds is not None and args.seed is not None:
        raise UsageError("give --seed (one search) or --seeds (several in one process), not both")
    config = _configure(args, SearchConfig, search_profile, ("space", "relaxation", "optimizer", "epochs", "device",
                                                             "data", "seed", "download", "tensorboard"))
    default_out = (f"runs/{config.profile}-{config.optimizer}-{config.epochs}" if config.space == "darts" else
                   f"runs/{config.profile}-{config.space}-{config.relaxation}-{config.optimizer}-{config.epochs}")
    out = args.out or default_out
    _output_path(out, "--out")
    if args.seeds is not None:
        return _search_seeds(args, config, out)
    summary = run_search(config, out, resume=args.resume, progress=not args.quiet)
    if summary is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    print(_search_line(out, summary))
    return 0


def _search_seeds(args: argparse.Namespace, config: Any, out: str) -> int:
    """``dscd search --seeds``: the seeds of ``config`` in one process, each into ``<out>/seed-N``."""
    from dscd.batched import parse_seeds, run_search_batched, seed_folder

    try:
        seeds = parse_seeds(args.seeds)
        configs = [config.replace(seed=seed) for seed in seeds]
    except ValueError as err:
        raise UsageError(f"--seeds: {err}") from None
    outs = [seed_folder(out, seed) for seed in seeds]
    for folder in outs:
        _output_path(str(folder), "--out")
    for folder, summary in zip(outs, run_search_batched(configs, outs, resume=args.resume, progress=not args.quiet),
                               strict=True):
        print(_search_line(str(folder), summary))
    return 0


def _search_line(out: str, summary: dict[str, Any]) -> str:
    """The line ``dscd search`` prints of a finished search."""
    from dscd.search_spaces import get_space

    space = get_space(summary["config"].get("space", "darts"))
    final = summary["final"]
    test = "-" if final["test_acc"] is None else f"{100 * final['test_acc']:.2f}%"
    weights = ", ".join(f"{cell} {final[f'mean_weight_{cell}']:.3f}" for cell in space.cells)
    found = "valid genotype" if summary["valid"] else f"Invalid arch. ({final['invalid_reason']})"
    if "lookup" in final:
        cell = final["lookup"]
        found += (f" {cell['cell']}: NAS-Bench-201 (12-epoch) CIFAR-10 test {cell['accuracy']['cifar10-test']:.2f}%, "
                  f"rank {cell['rank']['cifar10']:,} of 15,625")
    return (f"{out}: {summary['epochs']} epochs in {summary['seconds']:.0f} s; train {100 * final['train_acc']:.2f}%, "
            f"val {100 * final['val_acc']:.2f}%, search test {test}; mean weight {weights}; {found}")


def _cmd_train(args: argparse.Namespace) -> int:
    from dscd.config import check_plain_name
    from dscd.eval_network import InvalidArchitectureError
    from dscd.genotype import GenotypeError, load_genotype
    from dscd.train import TrainConfig, train_genotype, train_profile

    try:
        genotype = load_genotype(args.genotype, args.name)
    except GenotypeError as err:
        raise UsageError(str(err)) from None
    config = _configure(args, TrainConfig, train_profile, ("epochs", "device", "data", "seed", "download",
                                                           "tensorboard"))
    name = args.name or Path(args.genotype).stem
    if args.out is None:  # the name becomes a folder name
        try:
            check_plain_name(name, "--name (the genotype's name, which names its run folder)")
        except ValueError as err:
            raise UsageError(f"{err}; or give --out") from None
    out = args.out or f"runs/train-{config.profile}-{name}"
    _output_path(out, "--out")
    try:
        summary = train_genotype(config, genotype, out, name=name, resume=args.resume, progress=not args.quiet)
    except InvalidArchitectureError as err:
        print(f"dscd train: Invalid arch.: {err}", file=sys.stderr)
        return 1
    if summary is None:  # a rank other than 0 under torchrun: rank 0 reports
        return 0
    size, paper = summary["size"], summary["paper_size"]
    print(f"{out}: {name}, {summary['epochs']} epochs in {summary['seconds']:.0f} s; test accuracy "
          f"{100 * summary['test_acc']:.2f}% (train {100 * summary['train_acc']:.2f}%); {size['params_m']:.3f} M "
          f"params ({size['params_with_aux_m']:.3f} M with the auxiliary head), {size['flops_m']:.1f} M FLOPs as "
          f"trained; at C=36, 20 cells, 32x32: {paper['params_m']:.2f} M params, {paper['flops_m']:.0f} M FLOPs")
    return 0


def _cmd_export(args: argparse.Namespace) -> int:
    from dscd.model_files import export_onnx, load_model
    from dscd.runfolder import is_run_folder_file

    onnx = _output_file(args.onnx, "--onnx")
    source = Path(args.run)
    if is_run_folder_file(onnx) or (onnx.exists() and source.exists() and onnx.resolve() == source.resolve()):
        raise UsageError(f"--onnx {onnx} would replace a run's own file ({onnx.name}): give a new file name, "
                         "e.g. model.onnx")
    if args.image_size is not None and not 8 <= args.image_size <= 1024:
        raise UsageError(f"--image-size must be from 8 to 1024, got {args.image_size}")
    try:
        net = load_model(source)
        size = args.image_size or net.image_size
        export_onnx(net, onnx, image_size=size, opset=args.opset)
    except ValueError as err:  # ModelFileError, or an opset the exporter cannot write
        raise UsageError(str(err)) from None
    params = f"; {net.size.params_m:.3f} M params" if net.size is not None else ""
    print(f"wrote {onnx}: input 'images' (batch, {net.in_channels}, {size}, {size}), output 'logits' "
          f"(batch, {net.classifier.out_features}){params}")
    return 0


def _cmd_download(args: argparse.Namespace) -> int:
    from dscd.data import download_cifar10

    source = download_cifar10(args.data)
    print(f"CIFAR-10 is in place: use --data {source} (or DSCD_DATA={source})")
    return 0


def _add_run_options(p: argparse.ArgumentParser, set_help: str, default_out: str) -> None:
    """The options ``dscd search`` and ``dscd train`` share: data, seed, device, live logs, ``--set``, the
    run folder, resuming, progress."""
    p.add_argument("--data", help="data source: ImageFolder folder or zip, cifar10[:DIR], digits (or $DSCD_DATA)")
    p.add_argument("--download", action="store_true", default=None,
                   help="fetch a cifar10[:DIR] source through torchvision first (never by default)")
    p.add_argument("--seed", type=int)
    p.add_argument("--device", help="auto (default), cpu or cuda")
    p.add_argument("--tensorboard", action="store_true", default=None,
                   help="live logs for TensorBoard in <out>/tensorboard (pip install 'dscd[tensorboard]')")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help=set_help)
    p.add_argument("--out", help=f"run folder (default {default_out})")
    p.add_argument("--resume", action="store_true", help="continue from the run folder's last checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="dscd",
        description="FairDARTS with doubly stochastic coordinate descent: regenerate the paper, run its pieces.",
    )
    parser.add_argument("--version", action="version", version=f"dscd {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser("reproduce", help="execute the numbered notebooks with papermill (figures and tables)")
    p.add_argument("--profile", choices=tuple(PROFILES), default="quick",
                   help="scale of every notebook: " + "; ".join(f"{p.name}, {p.summary}" for p in PROFILES.values()))
    p.add_argument("--only", action="append", metavar="NN",
                   help="run only notebook NN (repeatable), e.g. --only 03")
    p.add_argument("--all", action="store_true",
                   help="also run the ablation notebooks (07: the record-window experiment, hours of searches)")
    p.add_argument("--outputs", default="outputs", help="root of the outputs (default: ./outputs)")
    p.add_argument("--notebooks", default=None, help="folder of the notebooks (default: the repository's)")
    p.add_argument("--force", action="store_true",
                   help="rerun every notebook, even those whose inputs and parameters have not changed")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--executor", choices=("local", "ray"), default="local",
                   help="where the searches and trainings of notebooks 01, 02, 04 run: local worker processes "
                        "(default) or a Ray cluster")
    p.add_argument("--address", default=None,
                   help="Ray cluster address (e.g. auto, ray://head:10001); default: start a local one")
    p.add_argument("--jobs", type=int, default=None,
                   help="local runs at once (default: one per core; one per device with --devices)")
    p.add_argument("--devices", default=None, metavar="0,1,...",
                   help="GPUs to spread runs over, one run per GPU at a time")
    p.add_argument("--batch-seeds", type=int, default=None, metavar="N",
                   help="run up to N seeds of one search in one process (default: the profile's choice where that "
                        "is faster, e.g. 5 for quick's DARTS searches; 0: every search in its own process)")
    p.add_argument("--publish", action="store_true",
                   help="then copy the regeneration's result files (claims, tables, figures as PNG and PDF, "
                        "reproduce.json) into <results>/<profile>, for committing and for dscd report")
    p.add_argument("--results", default="results", help="root of the published results (default: ./results)")
    p.add_argument("--keep-runs", action="store_true",
                   help="copy every finished search's records (no checkpoints) into <results>/<profile>/runs, every "
                        "minute and at the end, even of a failed or interrupted call: a regeneration in parts")
    p.add_argument("--reuse-runs", action="store_true",
                   help="first put the searches kept in <results>/<profile>/runs back into the outputs, where the "
                        "notebooks reuse them (those of other data are left out)")
    p.set_defaults(func=_cmd_reproduce)

    p = sub.add_parser("report", help="render the README's headline and the docs' results and benchmarks "
                                      "pages from the committed result files")
    p.add_argument("files", nargs="*",
                   help="files to render (default: README.md and the Markdown pages under docs/ that hold markers)")
    p.add_argument("--root", default=".", help="repository root holding results/ (default: .)")
    p.add_argument("--check", action="store_true",
                   help="write nothing; exit 1 if a file differs from what the result files give")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("lookup", help="a NAS-Bench-201 cell's accuracies (12-epoch) and ranks among its 15,625 "
                                      "cells, from the table shipped with dscd")
    p.add_argument("cell", help="a cell string in NAS-Bench-201's format (op~i entries, nodes joined by +), an "
                                "index (0-15624), or a NAS-Bench-201 search's run folder")
    p.add_argument("--json", action="store_true", help="print the lookup as JSON")
    p.set_defaults(func=_cmd_lookup)

    p = sub.add_parser("bench", help="synthetic benchmark (paper Figure 3): Adam +/- DSCD, CMA-ES, sampling")
    p.add_argument("--function", action="append", metavar="NAME",
                   help="styblinski_tang, schwefel or rotated_<name>; repeatable or comma-separated (default: both)")
    p.add_argument("--dim", type=int, default=10, help="dimension (default 10)")
    p.add_argument("--runs", type=int, default=20, help="runs per method from seeded uniform starts (default 20)")
    p.add_argument("--budget", type=int, default=10000, help="function evaluations per run (default 10000)")
    p.add_argument("--methods", action="append", metavar="M[,M...]",
                   help="adam_0.001, adam_0.01, adam_0.1, adam_schedule (each also +dscd), cmaes, random, "
                        "dual_annealing (default: all)")
    p.add_argument("--rotated", action="store_true", help="use the rotated variants f(R(x - x*) + x*)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="outputs/bench", help="folder for results.json, curves.npz, figure.png/pdf")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.set_defaults(func=_cmd_bench)

    p = sub.add_parser("search", help="architecture search: FairDARTS with Adam or DSCD on alpha")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--config", help="configuration file (JSON or YAML); fields not given keep the defaults")
    source.add_argument("--profile", default="quick", choices=tuple(PROFILES),
                        help="named configuration (default quick)")
    p.add_argument("--space",
                   help="search space: darts (the default) or nas-bench-201 (every found cell's accuracy is a lookup)")
    p.add_argument("--relaxation",
                   help="sigmoid (FairDARTS, the default) or softmax (DARTS, 'none' among the operations)")
    p.add_argument("--optimizer", choices=("adam", "dscd"), help="optimiser of the architecture weights")
    p.add_argument("--epochs", type=int, help="search budget in epochs")
    p.add_argument("--seeds", metavar="0-4|0,2,7",
                   help="several seeds of this search in one process (batched: faster per seed), each into "
                        "<out>/seed-N")
    _add_run_options(p, "override any configuration field",
                     "runs/<profile>-<optimizer>-<epochs>, or runs/<profile>-<space>-<relaxation>-<optimizer>-<epochs>")
    p.set_defaults(func=_cmd_search)

    p = sub.add_parser("train", help="train a genotype from scratch (final architecture, paper Tables 1-2)")
    p.add_argument("--genotype", required=True, metavar="FILE|NAME",
                   help="a genotype: JSON (a search's genotype.json, or named ones with --name), DARTS' "
                        "Genotype(...) text in a file, or a published name (DARTS_V2, PC_DARTS, FairDARTS_a, ...)")
    p.add_argument("--name", help="which genotype of a file holding several")
    source = p.add_mutually_exclusive_group()
    source.add_argument("--config", help="configuration file (JSON or YAML); fields not given keep the defaults")
    source.add_argument("--profile", default="quick", choices=tuple(PROFILES),
                        help="named configuration (default quick; paper: 20 cells, C=36, batch 96, 600 epochs)")
    p.add_argument("--epochs", type=int, help="training epochs")
    _add_run_options(p, "override any configuration field, e.g. --set amp=true --set channels_last=false",
                     "runs/train-<profile>-<name>")
    p.set_defaults(func=_cmd_train)

    p = sub.add_parser("describe", help="parameters, FLOPs and a drawing of a genotype (file or published name), "
                                        "or a NAS-Bench-201 cell's size")
    p.add_argument("genotype", help="genotype JSON (one, or {name: genotype, ...}), DARTS' Genotype(...) text "
                                    "(e.g. a genotypes.py), a published name such as DARTS_V2, or a NAS-Bench-201 "
                                    "cell string (op~i entries, nodes joined by +)")
    p.add_argument("--name", help="which genotype of a file holding several (default: all)")
    p.add_argument("--plot", metavar="FILE", help="draw the two cells to FILE (png, pdf, svg)")
    p.add_argument("--channels", type=int, default=36, help="initial channels of the final network (36)")
    p.add_argument("--layers", type=int, default=20, help="cells of the final network (20)")
    p.add_argument("--image-size", type=int, default=32, help="input side for FLOPs (32)")
    p.set_defaults(func=_cmd_describe)

    p = sub.add_parser("export", help="export a trained network (dscd train's run folder or model.pt) to ONNX")
    p.add_argument("run", help="a training run folder, or its model.pt")
    p.add_argument("--onnx", required=True, metavar="FILE", help="ONNX file to write (dynamic batch size)")
    p.add_argument("--image-size", type=int, help="input side (default: the size it was trained at)")
    p.add_argument("--opset", type=int, default=18, help="ONNX opset (18, the oldest torch's exporter writes)")
    p.set_defaults(func=_cmd_export)

    p = sub.add_parser("download", help="fetch CIFAR-10 through torchvision (for --data cifar10:DIR)")
    p.add_argument("--data", default="cifar10", help="cifar10 (into ~/.cache/dscd/cifar10) or cifar10:DIR")
    p.set_defaults(func=_cmd_download)

    p = sub.add_parser("animate", help="animate the beta-annealed proposal (GIF, and MP4 with ffmpeg)")
    p.add_argument("--out", default="beta_annealing.gif", help="output path; the suffix is replaced per format")
    p.add_argument("--v", type=float, default=0.75, help="unit position of the current point (paper: 0.75)")
    p.add_argument("--frames", type=int, default=60)
    p.add_argument("--fps", type=int, default=12)
    p.add_argument("--phi-end", type=float, default=0.995, help="concentration of the last frame")
    p.add_argument("--lo", type=float, default=-3.0, help="domain lower bound")
    p.add_argument("--hi", type=float, default=3.0, help="domain upper bound")
    p.set_defaults(func=_cmd_animate)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    from dscd.data import DataError
    from dscd.distributed import RanksLost
    from dscd.livelog import log_to_stderr
    from dscd.runfolder import RunFolderError

    log_to_stderr()  # the library's messages (plain progress lines) as the command's own
    try:
        return int(args.func(args))
    except UsageError as err:
        parser.exit(2, f"dscd {args.command}: error: {err}\n")
    except (RunFolderError, DataError, FloatingPointError, ValueError) as err:
        # a run folder in use or holding another run, a full disk, bad data, a diverged run: one line, exit 1
        print(f"dscd {args.command}: {err}", file=sys.stderr)
        return 1
    except RanksLost as err:  # under torchrun: another rank died or a collective timed out
        print(f"dscd {args.command}: rank {os.environ.get('RANK', '?')} {err}; the run folder keeps its last "
              "checkpoint: rerun the same torchrun command with --resume", file=sys.stderr)
        return 1
    except OSError as err:  # the environment: permissions, a missing or read-only folder
        where = f" {err.filename}" if err.filename else ""
        print(f"dscd {args.command}: {err.strerror or err}:{where}", file=sys.stderr)
        return 1
    except ImportError as err:  # an optional dependency of this command is not installed
        extra = _EXTRAS.get((err.name or "").split(".")[0])
        hint = f": pip install 'dscd[{extra}]'" if extra else ""
        print(f"dscd {args.command}: {err}{hint}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
