"""Opening an index, encoding questions, retrieving and ranking passages."""
