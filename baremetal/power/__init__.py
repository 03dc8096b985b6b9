"""Power paths to a seat: the backend interface (``backend``) and its implementations."""
