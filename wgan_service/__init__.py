"""The composition root: the `wgan-service` command builds the one Settings and Runtime of a process and
starts the API (app), a worker (worker) or both on them. Nothing imports this package."""
