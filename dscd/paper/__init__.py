"""The paper's experiments: what the notebooks run, judge and draw, and what regenerates them.

A library user never needs these: the optimiser, the search space, the search, the final training and
the models are the top-level modules of :mod:`dscd`. Here are the experiments' job assembly and
Tables 1-2 (:mod:`~dscd.paper.experiments`), the claims and their statistics
(:mod:`~dscd.paper.claims`), the figures (:mod:`~dscd.paper.plots`), tables
(:mod:`~dscd.paper.tables`), Figure 3's synthetic benchmark and its test functions
(:mod:`~dscd.paper.figure3`, :mod:`~dscd.paper.functions`), the calibration of the ``quick``
protocol (:mod:`~dscd.paper.calibration`), the regeneration of every notebook
(:mod:`~dscd.paper.reproduce`) and the rendering of committed results into the documentation
(:mod:`~dscd.paper.report`).
"""
