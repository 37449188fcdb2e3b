"""Local HTTP servers that answer like HubSpot, Zendesk and Slack (loopback, free port)."""
