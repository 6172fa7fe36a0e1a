"""``python -m rolefusion.predict``: the same command as ``rolefusion-predict`` (the work is in
:mod:`rolefusion.commands.predict`)."""

from rolefusion.cli import predict

if __name__ == "__main__":
    predict()
