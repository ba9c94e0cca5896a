"""`tpt reproduce`: the CPU reasoning testbed and the end-to-end demo of the TPT effect."""


def register_plugins() -> None:
    """Add reproduce's entries to the registries below it: the `procedural` backend (the testbed's teacher).

    pyproject.toml declares the same entry as an entry point (group `tpt.backends`), which is how an
    installed tpt finds it; this registration is the same from reproduce's side, for a checkout whose
    installed metadata predates the entry point. Run on import of `tpt.reproduce` and by `tpt` itself."""
    from tpt.augment.backends.base import BACKENDS

    BACKENDS.add("procedural", "tpt.reproduce.teacher:build")


register_plugins()
