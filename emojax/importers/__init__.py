"""Command-line importers of models trained elsewhere into emojax workdirs.

  python -m emojax.importers.attendaffectnet --state_dict=... --target=arousal --workdir=...
"""
