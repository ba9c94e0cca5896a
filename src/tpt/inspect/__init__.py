"""`tpt inspect`: one self-contained HTML report of augment, validate and pack output directories."""
