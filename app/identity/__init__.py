"""Who is calling: accounts, their sessions and API tokens (beneath every domain, which asks it)."""
