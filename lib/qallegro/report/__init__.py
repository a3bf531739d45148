"""What the book's pages display: one table style (`tables`), figures sized for the page (`figures`), the paper's
claims and their verdicts (`claims`), and per page topic the numbers and tables the pages show: the studies and
their re-timed fronts (`studies`), the final models over seeds (`finals`), MD stability (`md`), the datasets
(`datasets`).

Pure functions of DataFrames and plain records; the notebooks call them, the tests check them.
"""
