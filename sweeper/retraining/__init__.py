"""After the search: stored configurations retrained fresh, on the test split (``evaluate``: did
tuning help) or with several seeds on validation (``confirm``: a winner that survives noise).
Builds on :mod:`sweeper.search` and the layers below."""
