"""Reading the corpus, cleaning and splitting articles, embedding passages, writing the index."""
