"""One audited way to rewrite audit entries: erasing a person's data on request.

The append-only trigger (0002) still refuses every DELETE and every UPDATE, except an
UPDATE made while the transaction has set ``switchboard.audit_redaction`` to ``on``
(``SET LOCAL``, so it ends with the transaction). Only ``audit.services.audit_redact``
sets it, and only inside ``customers.services.customer_erase``, which records the
erasure itself as a new entry.
"""

from django.db import migrations

FORWARD = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND current_setting('switchboard.audit_redaction', true) = 'on' THEN
        RETURN NEW;
    END IF;
    RAISE EXCEPTION 'audit entries are append-only: % on audit_auditentry is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""

BACKWARD = """
CREATE OR REPLACE FUNCTION audit_entry_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'audit entries are append-only: % on audit_auditentry is not allowed', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;
"""


class Migration(migrations.Migration):
    dependencies = [("audit", "0006_alert_moved_to_console")]

    operations = [migrations.RunSQL(FORWARD, BACKWARD)]
