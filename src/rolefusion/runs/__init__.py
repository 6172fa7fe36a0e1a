"""What a run is made of and leaves behind: its parts built from the config, its callbacks and
loggers, its directory (resume, failure), its files and figures, and its restoration."""
