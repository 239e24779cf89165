"""Sphinx configuration of dscd's documentation (``make docs``; a test builds it with warnings as errors)."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))

import dscd  # noqa: E402
from dscd.paper.report import notebook_figures  # noqa: E402

project = "dscd"
author = "dscd developers"
release = version = dscd.__version__
copyright = "the dscd developers"

extensions = ["sphinx.ext.autodoc", "sphinx.ext.napoleon", "sphinx.ext.viewcode", "sphinx.ext.intersphinx", "myst_nb",
              "sphinxarg.ext", "sphinx_copybutton"]
exclude_patterns = ["_build", "_ext", "conf.py", "Thumbs.db", ".DS_Store"]
myst_heading_anchors = 3
myst_enable_extensions = ["colon_fence"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "show-inheritance": False}
napoleon_google_docstring = True
napoleon_numpy_docstring = False
suppress_warnings = ["myst.header"]  # pages moved from the README start below the top heading level
html_theme = "furo"  # full-width tables and code blocks, a maintained theme with a dark mode
html_title = f"dscd {release}"
html_static_path = ["_static"]
copybutton_prompt_text = r"\$ |>>> |\.\.\. "  # the copy button leaves prompts out
copybutton_prompt_is_regexp = True

# Links to Python, PyTorch and NumPy. The build reads the committed inventories in docs/_inventories/ and
# never the network (CI has none); `python dev/docs_inventories.py --download` refreshes them where it can.
intersphinx_mapping = {
    "python": ("https://docs.python.org/3/", str(DOCS / "_inventories" / "python.inv")),
    "torch": ("https://docs.pytorch.org/docs/stable/", str(DOCS / "_inventories" / "torch.inv")),
    "numpy": ("https://numpy.org/doc/stable/", str(DOCS / "_inventories" / "numpy.inv")),
}

# The notebooks are rendered from their jupytext sources (notebooks/src/NN_*.py, percent format),
# copied here at each build (docs/notebooks/ is ignored by git), and never executed by the build: each page ends
# with the figures its notebook drew in the published regeneration (results/<profile>/figures/), captioned.
nb_execution_mode = "off"
nb_custom_formats = {".py": "notebook_reader.read_percent"}
source_suffix = {".md": "myst-nb", ".py": "myst-nb"}
_NOTEBOOKS = DOCS / "notebooks"
shutil.rmtree(_NOTEBOOKS, ignore_errors=True)
_NOTEBOOKS.mkdir()
for source in sorted((ROOT / "notebooks" / "src").glob("[0-9][0-9]_*.py")):
    figures = notebook_figures(ROOT, source.stem, link_prefix="../../")
    cell = "\n\n# %% [markdown]\n" + "".join(f"# {line}".rstrip() + "\n" for line in figures.splitlines())
    (_NOTEBOOKS / source.name).write_text(source.read_text() + (cell if figures else ""))

# Options stay as typed: docutils' smart quotes would turn "--only" into an en dash, which fails when pasted.
smartquotes = False
