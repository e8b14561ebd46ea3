"""WordNet: finding and reading it safely (``data``), class names' senses, parents and children
(``senses``), and the sparse hierarchy of Ge et al. (``sparse``)."""
