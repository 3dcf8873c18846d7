"""Opening an index, encoding questions, retrieving and ranking passages."""

import dalil.indexer  # noqa: F401 - sets the one-thread-per-process limits before FAISS or a model loads
