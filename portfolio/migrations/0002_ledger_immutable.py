# The ledger is append-only: the database itself refuses UPDATE and DELETE on it, so
# neither a bug nor a stray admin action can rewrite history. TRUNCATE (test flushes)
# is a statement, not a row change, and is not affected.
from django.db import migrations

CREATE = """
CREATE OR REPLACE FUNCTION portfolio_ledger_immutable() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'portfolio_ledgerentry is append-only (% refused)', TG_OP
        USING ERRCODE = 'integrity_constraint_violation';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER portfolio_ledger_immutable
    BEFORE UPDATE OR DELETE ON portfolio_ledgerentry
    FOR EACH ROW EXECUTE FUNCTION portfolio_ledger_immutable();
"""

DROP = """
DROP TRIGGER IF EXISTS portfolio_ledger_immutable ON portfolio_ledgerentry;
DROP FUNCTION IF EXISTS portfolio_ledger_immutable();
"""


class Migration(migrations.Migration):
    dependencies = [("portfolio", "0001_initial")]

    operations = [migrations.RunSQL(CREATE, DROP)]
