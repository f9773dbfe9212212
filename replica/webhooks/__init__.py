"""Webhooks: the registry tells other systems what happened (events.py in consensus/)."""
