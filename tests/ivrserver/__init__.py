"""Tests for the Genesys IVR Server link and its simulator."""
