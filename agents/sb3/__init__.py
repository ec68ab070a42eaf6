"""stable-baselines3 as a backend: ``agent: {algo: sb3.<Name>, kwargs: {...}}`` in a manifest."""
