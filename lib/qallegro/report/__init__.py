"""What the book's pages display: one table style (`tables`), the paper's claims and their verdicts (`claims`).

Pure functions of DataFrames and plain records; the notebooks call them, the tests check them.
"""
