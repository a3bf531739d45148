"""The Cu-Li dataset by the paper's recipe: slabs, vacancies, adatoms, coherent interfaces and their melt-quench MD.

Modules: `structures` (slabs, vacancies, adatoms), `interfaces` (Li/Cu lattice matching), `md` (melt-quench,
relaxations), `labelers` (SevenNet-0, GPAW), `generate` (plan, resume, provenance), `validation` (labeller error
against DFT), `stats` (dataset statistics, Fig. 7), `cli` (`qallegro culi ...`). Read it with
`qallegro.data.load_dataset("culi", split)`.
"""
