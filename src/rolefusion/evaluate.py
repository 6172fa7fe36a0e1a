"""``python -m rolefusion.evaluate``: the same command as ``rolefusion-eval`` (the work is in
:mod:`rolefusion.commands.evaluate`)."""

from rolefusion.cli import evaluate

if __name__ == "__main__":
    evaluate()
