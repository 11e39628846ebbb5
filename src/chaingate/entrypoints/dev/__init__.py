"""`chaingate dev`: the whole gateway plus a local chain, in one command."""
