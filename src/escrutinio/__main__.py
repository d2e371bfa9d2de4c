"""``python -m escrutinio``: the same command line as the ``escrutinio`` script."""

from escrutinio.cli import app

if __name__ == "__main__":
    app(prog_name="escrutinio")
