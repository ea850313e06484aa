"""AG-MAN reproduction: the method, its baselines and the pipeline that regenerates Tables 2-10."""
