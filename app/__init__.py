"""The HTTP layer: validate, authorise, read and write rows, enqueue, stream, sample."""
