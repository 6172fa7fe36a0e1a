"""``python -m rolefusion.report``: the same command as ``rolefusion-report`` (the work is in
:mod:`rolefusion.commands.report`)."""

from rolefusion.commands.report import main

if __name__ == "__main__":
    main()
