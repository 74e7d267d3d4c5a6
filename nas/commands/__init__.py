"""One module per ``nas`` sub-command; each defines ``Command`` (see ``nas.cli``).

Command modules import nothing heavy at module level, so ``nas --help`` stays fast and works
without torch or ray.
"""
