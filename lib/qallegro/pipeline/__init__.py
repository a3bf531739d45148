"""The executable book's pipeline: run the notebooks with papermill in dependency order, cache, build.

- `notebooks`: the registry (every notebook, its parameters per scale, its dependencies) and the paper items;
  `study_source`: the sampler and seed of the book's studies (the campaign's at a `run_with_book` scale).
- `cache`: the cache key of a notebook run (parameters, scale, code version, notebook source, data, inputs).
- `execute`: one papermill run, written atomically; a failure names the notebook and the cell.
- `reproduce`: the plan and the whole run (`qallegro reproduce`), optionally in a temporary copy.
- `build`: the jupyter-book build, the project site (`site_config`) and `publish` to a gh-pages branch.
- `records`: the run records the reproducibility page shows.
- `page`: the provenance line each page states, and what the book's Sphinx extension (`book/_ext`) does to a
  page as it is read: the injected parameters shown, the footer with commit, currency and downloads, stored
  tables in the book's style. `compare`, `experiments`: ours beside the paper's, the shared experiments (at a
  `run_with_book` scale the campaign's studies and final units, read, never recomputed).
- Display tables and figure sizes are in `qallegro.report`.
"""
