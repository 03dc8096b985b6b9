"""Accounts: staff users, API tokens, browser sessions, their rules and login rate limits."""
