"""``python -m rolefusion.extract``: the same command as ``rolefusion-extract`` (the work is in
:mod:`rolefusion.commands.extract`)."""

from rolefusion.commands.extract import main

if __name__ == "__main__":
    raise SystemExit(main())
