"""The index on disk: the only code that names a table, a column or a FAISS class."""
