"""The names of audit's permissions (code uses these, never the strings)."""

VIEW_AUDITENTRY = "audit.view_auditentry"
