"""Migration scripts, named <revision>_<slug>.py; revisions are 0001, 0002, ... (ordered as strings)."""
