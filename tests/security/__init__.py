"""Security tests: signatures through the HTTP app, replays, markup injection, prompt injection, logs."""
