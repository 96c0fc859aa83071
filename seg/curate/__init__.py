"""Curation: score every annotation with explained signals, keep the best, and show why (``seg curate``)."""
