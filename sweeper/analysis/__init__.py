"""The read-only side: a store read with SQLAlchemy Core, status, best trials, importance,
plots and the HTML report. Never imports Keras or TensorFlow, never writes to a store.
"""
