"""Reports built from the evaluated cells and runs: the per-cell report format (``cell_report``), the
paper's Tables 2-10 set beside our numbers (``tables``) and its figures (``figures``)."""
