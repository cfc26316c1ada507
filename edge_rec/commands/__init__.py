"""One module per group of ``edge-rec`` commands; see :mod:`edge_rec.cli`."""
