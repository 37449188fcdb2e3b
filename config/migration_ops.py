"""Operations for migrations that move a model from one app to another, rows untouched.

The table is renamed (``SeparateDatabaseAndState``: the old app's state forgets the model,
the new app's state learns it, the database only renames), and the model's content type
is relabelled in place, keeping its id: audit entries and object permissions that point at
it stay valid (audit entries are append-only and could not be rewritten anyway), and the
model's permissions follow it to the new app label.
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def rename_table(old: str, new: str, indexes: dict[str, str] | None = None) -> migrations.RunSQL:
    """Rename a table (and the named indexes Django derives from the table's name)."""
    forward = [f'ALTER TABLE "{old}" RENAME TO "{new}"']
    backward = [f'ALTER TABLE "{new}" RENAME TO "{old}"']
    for old_index, new_index in (indexes or {}).items():
        forward.append(f'ALTER INDEX "{old_index}" RENAME TO "{new_index}"')
        backward.insert(0, f'ALTER INDEX "{new_index}" RENAME TO "{old_index}"')
    return migrations.RunSQL(forward, backward)


def _relabel(apps: Any, model: str, source: str, target: str) -> None:
    content_type = apps.get_model("contenttypes", "ContentType")
    permission = apps.get_model("auth", "Permission")
    old = content_type.objects.filter(app_label=source, model=model).first()
    if old is None:
        return
    # A content type for the target may exist already (created by a permissions sync
    # earlier in this same migrate); it is new and unreferenced: the old one wins.
    for stale in content_type.objects.filter(app_label=target, model=model):
        permission.objects.filter(content_type=stale).delete()
        stale.delete()
    old.app_label = target
    old.save(update_fields=["app_label"])


def move_content_type(model: str, source: str, target: str) -> migrations.RunPython:
    """Relabel ``source.model``'s content type as ``target.model`` (and back on reverse)."""
    return migrations.RunPython(
        lambda apps, schema_editor: _relabel(apps, model, source, target),
        lambda apps, schema_editor: _relabel(apps, model, target, source),
    )
