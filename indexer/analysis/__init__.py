"""Text analysis shared by indexing and search: Arabic normalisation and stems, lexical terms,
cleaning articles of page furniture, splitting them into passages. Imports nothing else of dalil."""
