"""`cpt slurm`: a recipe as chained, preemptible Slurm jobs (scripts.py writes them, jobs.py submits and
reports). The templates live in slurm/templates/, the test cluster's scripts in slurm/."""
