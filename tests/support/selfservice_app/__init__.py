"""Key models owned by a user and by a team, for the self-service tests."""
