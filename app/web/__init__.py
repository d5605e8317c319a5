"""What every domain's routes share: CSRF, JSON guards, templating, errors, app state."""
