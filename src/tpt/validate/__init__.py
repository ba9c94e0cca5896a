"""`tpt validate`: flag bad trajectories (truncated, degenerate, copied, leaked, contaminated)."""
