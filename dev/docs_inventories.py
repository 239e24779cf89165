"""Write the intersphinx inventories that ``make docs`` reads (``docs/_inventories/``), without the network.

The docs build links ``torch.Tensor``, ``numpy.ndarray`` and Python's own objects to their projects' pages
through Sphinx inventories (``objects.inv``). The build never fetches them (CI has no network), so they are
committed:

* ``python.inv`` is Python's published inventory, as Debian's ``python3.11-doc`` installs it
  (``/usr/share/doc/python3.11/html/objects.inv``);
* ``torch.inv`` and ``numpy.inv`` are written by this script: the PyTorch and NumPy objects that dscd's
  signatures and docstrings name, each with the page and anchor of its published documentation.

On a machine with internet, ``python dev/docs_inventories.py --download`` replaces all three with the full
inventories the projects publish. Run without arguments it rewrites the two written ones, e.g. after adding a
name below; a name missing here leaves its text unlinked, never a broken link.
"""

from __future__ import annotations

import argparse
import sys
import urllib.request
import zlib
from pathlib import Path

INVENTORIES = Path(__file__).resolve().parents[1] / "docs" / "_inventories"

#: The published documentation each inventory points into (``docs/conf.py`` uses the same addresses).
BASES = {
    "python": "https://docs.python.org/3/",
    "torch": "https://docs.pytorch.org/docs/stable/",
    "numpy": "https://numpy.org/doc/stable/",
}

#: project -> (name, role, page) for each object dscd's documentation names; the anchor is the name itself.
#: Annotations name some classes by the module that defines them (``torch.nn.modules.module.Module``): those
#: names are in :data:`ALIASES`, linked to the public name's entry.
OBJECTS: dict[str, list[tuple[str, str, str]]] = {
    "torch": [
        ("torch.Tensor", "class", "tensors.html"),
        ("torch.device", "class", "tensor_attributes.html"),
        ("torch.dtype", "class", "tensor_attributes.html"),
        ("torch.Generator", "class", "generated/torch.Generator.html"),
        ("torch.nn.Module", "class", "generated/torch.nn.Module.html"),
        ("torch.nn.Parameter", "class", "generated/torch.nn.parameter.Parameter.html"),
        ("torch.optim.Optimizer", "class", "optim.html"),
        ("torch.optim.Adam", "class", "generated/torch.optim.Adam.html"),
        ("torch.optim.SGD", "class", "generated/torch.optim.SGD.html"),
        ("torch.optim.LBFGS", "class", "generated/torch.optim.LBFGS.html"),
        ("torch.nn.Sequential", "class", "generated/torch.nn.Sequential.html"),
        ("torch.no_grad", "function", "generated/torch.no_grad.html"),
        ("torch.utils.data.DataLoader", "class", "data.html"),
        ("torch.utils.data.Dataset", "class", "data.html"),
    ],
    "numpy": [
        ("numpy.ndarray", "class", "reference/generated/numpy.ndarray.html"),
        ("numpy.random.Generator", "class", "reference/random/generator.html"),
    ],
}

#: defining-module name -> public name, for the names annotations resolve to.
ALIASES = {
    "torch.nn.modules.module.Module": "torch.nn.Module",
    "torch.nn.modules.container.Sequential": "torch.nn.Sequential",
    "torch.nn.parameter.Parameter": "torch.nn.Parameter",
    "torch.optim.optimizer.Optimizer": "torch.optim.Optimizer",
    "torch._C.Generator": "torch.Generator",
    "numpy.random._generator.Generator": "numpy.random.Generator",
}


def inventory_bytes(project: str, objects: list[tuple[str, str, str]]) -> bytes:
    """One Sphinx inventory (version 2): a plain header, then zlib-compressed lines
    ``name domain:role priority uri display``, the uri relative to the project's documentation root."""
    header = (f"# Sphinx inventory version 2\n# Project: {project}\n# Version: stable\n"
              "# The remainder of this file is compressed using zlib.\n").encode()
    entries = [(name, role, f"{page}#{name}", "-") for name, role, page in objects]
    pages = {name: (role, page) for name, role, page in objects}
    entries += [(alias, pages[public][0], f"{pages[public][1]}#{public}", public)
                for alias, public in ALIASES.items() if public in pages]
    lines = "".join(f"{name} py:{role} 1 {uri} {display}\n" for name, role, uri, display in sorted(entries))
    return header + zlib.compress(lines.encode())


def _write(path: Path, data: bytes) -> None:
    if path.is_symlink():
        raise SystemExit(f"docs_inventories: {path} is a link; remove it first (nothing is written through links)")
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--download", action="store_true",
                        help="replace all three with the inventories the projects publish (needs internet)")
    args = parser.parse_args(argv)
    INVENTORIES.mkdir(parents=True, exist_ok=True)
    if args.download:
        for name, base in BASES.items():
            try:
                with urllib.request.urlopen(base + "objects.inv", timeout=30) as response:
                    data = response.read()
            except OSError as error:
                print(f"docs_inventories: cannot download {base}objects.inv ({error}); the committed "
                      f"{name}.inv stays", file=sys.stderr)
                return 1
            _write(INVENTORIES / f"{name}.inv", data)
            print(f"wrote {INVENTORIES / f'{name}.inv'} ({len(data)} bytes, downloaded)")
        return 0
    for name, objects in OBJECTS.items():
        _write(INVENTORIES / f"{name}.inv", inventory_bytes(name, objects))
        print(f"wrote {INVENTORIES / f'{name}.inv'} ({len(objects)} objects)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
