"""Prefect flows: wiring only. Each calls the stage tasks in order."""
