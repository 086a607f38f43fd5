"""OVHcloud's side of the line, read through its API (the official ``ovh`` client)."""
