"""The ground floor: errors, limits, raw-argument checks, progress, files and archives, markup,
and the package's own data files. Nothing here knows about models, prompts or methods."""
