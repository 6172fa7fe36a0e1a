"""``python -m rolefusion.info``: the same command as ``rolefusion-info`` (the work is in
:mod:`rolefusion.commands.info`)."""

from rolefusion.cli import info

if __name__ == "__main__":
    info()
