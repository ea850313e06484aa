"""Reports built from the evaluated cells: the paper's Tables 2-10 set beside our numbers."""
