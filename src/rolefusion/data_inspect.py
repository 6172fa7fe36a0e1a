"""``python -m rolefusion.data_inspect``: the same command as ``rolefusion-data`` (the work is in
:mod:`rolefusion.commands.data_inspect`)."""

from rolefusion.cli import data

if __name__ == "__main__":
    data()
