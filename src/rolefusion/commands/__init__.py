"""One module per console command; commands never import each other (shared parts: runs/)."""
