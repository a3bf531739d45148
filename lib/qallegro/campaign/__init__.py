"""The evidence campaign: resumable units of work (training runs, sweeps, dataset generation) that workers pull,
the head ablation with paired seeds, and the statistics that turn its records into verdicts on the paper's claims."""
