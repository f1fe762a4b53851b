"""Temporal workflows and activities, one package per flow."""
