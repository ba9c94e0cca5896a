"""`tpt augment --executor ray`: the same augmentation, its units spread over the workers of a Ray cluster."""
