"""The executable book's pipeline: run the notebooks with papermill in dependency order, cache, build.

- `notebooks`: the registry (every notebook, its parameters per scale, its dependencies) and the paper items.
- `cache`: the cache key of a notebook run (parameters, scale, code version, notebook source, data, inputs).
- `execute`: one papermill run, written atomically; a failure names the notebook and the cell.
- `reproduce`: the plan and the whole run (`qallegro reproduce`), optionally in a temporary copy.
- `build`: the jupyter-book build.  `records`: the run records the reproducibility page shows.
- `page`: helpers the notebooks call (the provenance line each page states).
"""
