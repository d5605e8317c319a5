"""The annotation queue: a batch run opened as a rating task that raters work through."""
