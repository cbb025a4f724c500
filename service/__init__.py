"""What the API and the workers share: settings, database, repositories, artifacts, events, queue."""
