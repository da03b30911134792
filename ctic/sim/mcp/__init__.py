"""The MCP (VoiceXML platform) simulator: C{twistd mcp-sim}."""
