"""Build a notebook (no outputs) from a Python file whose cells are separated by '# %%' lines.

    python tools/make_notebook.py notebooks/src/03_beta_annealing.py notebooks/03_beta_annealing.ipynb

'# %% [markdown]' starts a markdown cell (its lines are '# '-prefixed); '# %% parameters'
starts the papermill parameters cell. The .py sources are the ones to edit and review.
"""

import sys

import nbformat


def build(src: str) -> nbformat.NotebookNode:
    cells, kind, lines = [], None, []

    def flush() -> None:
        if kind is None:
            return
        text = "\n".join(lines).strip("\n")
        if kind == "markdown":
            text = "\n".join(line[2:] if line.startswith("# ") else line.lstrip("#") for line in text.splitlines())
            cells.append(nbformat.v4.new_markdown_cell(text))
        else:
            cell = nbformat.v4.new_code_cell(text)
            if kind == "parameters":
                cell.metadata["tags"] = ["parameters"]
            cells.append(cell)

    for line in src.splitlines():
        if line.startswith("# %%"):
            flush()
            rest = line[4:].strip()
            kind = "markdown" if rest == "[markdown]" else "parameters" if rest == "parameters" else "code"
            lines = []
        else:
            lines.append(line)
    flush()
    nb = nbformat.v4.new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    return nb


if __name__ == "__main__":
    src, dst = sys.argv[1], sys.argv[2]
    nb = build(open(src).read())
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i:02d}"
    nbformat.write(nb, dst)
