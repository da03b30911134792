"""Simulators of the peers ctic talks to: real programs for labs and tests."""
