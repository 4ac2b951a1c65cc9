"""Orchestration, tracking and the command line around lstm_core."""
