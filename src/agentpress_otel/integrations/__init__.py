"""One module per instrumented library; each is imported lazily and can be undone."""
