"""Throughput and memory harnesses; run by hand, never as tests."""
