"""Every query the service makes, grouped by table."""
