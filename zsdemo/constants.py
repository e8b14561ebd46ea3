"""Numbers shared by the command line, the app and the library, as data (no imports)."""

DEFAULT_TOP_K = 5                  # classes listed per strategy
MAX_TOP_K = 20
EVAL_BATCH_SIZE = 32               # images per encoder step of an evaluation, each with its views
