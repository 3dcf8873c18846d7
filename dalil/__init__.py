"""dalil: semantic search over Arabic tech news.

The repository keeps its folders at the top (`indexer/`, `search/`, `api/`); packaging maps them
into this one import name (`dalil.indexer`, `dalil.search`, `dalil.api`: pyproject's package-dir),
so installing dalil adds nothing else to site-packages.
"""
