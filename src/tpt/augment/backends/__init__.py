"""Generation backends for `tpt augment`, loaded lazily by name (tpt.augment.backend.BACKENDS)."""
