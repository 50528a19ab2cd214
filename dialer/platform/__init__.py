"""Process plumbing shared by the processes: logging, graceful serving, metrics, embedded Redis."""
