"""``python -m rolefusion.train``: the same command as ``rolefusion-train`` (the work is in
:mod:`rolefusion.commands.train`)."""

from rolefusion.cli import train

if __name__ == "__main__":
    train()
