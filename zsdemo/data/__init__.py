"""Labelled images: folders, CSVs and zips (``labelled``), the paper's datasets (``datasets``) and
few-shot support sets (``support``)."""
