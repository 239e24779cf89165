"""How the documentation reads a notebook's jupytext source (percent format): as a Python notebook."""

import jupytext


def read_percent(text: str):
    notebook = jupytext.reads(text, fmt="py:percent")
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    notebook.metadata["language_info"] = {"name": "python", "pygments_lexer": "ipython3"}
    return notebook
