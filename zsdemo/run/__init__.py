"""A request from start to end: validated once (``request``), classified (``pipeline``), or
evaluated on a labelled set (``evaluation``, ``metrics``, ``distributed``) and written out
(``report``, ``plots``)."""
