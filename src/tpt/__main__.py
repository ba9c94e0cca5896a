"""`python -m tpt` runs the CLI."""

from tpt.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
