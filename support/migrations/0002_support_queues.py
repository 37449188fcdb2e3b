"""The support queues, and who may work each (django-guardian object permissions).

Visibility is per queue: billing, retention and human review are worked by every role;
the disputes queue by finance admins and owners only (chargebacks are money decisions).
Groups come from customers.0002; the ``work_queue`` permission is created here first
(permissions are normally created after all migrations).
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

QUEUES = [
    ("billing", "Billing", "Failed payments: one ticket per unpaid invoice",
     ["owner", "finance_admin", "support_agent"]),
    ("disputes", "Disputes", "Chargebacks: finance admins and owners only",
     ["owner", "finance_admin"]),
    ("retention", "Retention", "Cancellations: a note for whoever talks to the customer next",
     ["owner", "finance_admin", "support_agent"]),
    ("human_review", "Human review", "State unknown or conflicting after retries",
     ["owner", "finance_admin", "support_agent"]),
]


def create_queues(apps, schema_editor, queues=QUEUES):
    app_config = apps.get_app_config("support")
    original = getattr(app_config, "models_module", None)
    app_config.models_module = original or True
    try:
        create_permissions(app_config, apps=apps, verbosity=0)
    finally:
        app_config.models_module = original
    SupportQueue = apps.get_model("support", "SupportQueue")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    content_type = ContentType.objects.get(app_label="support", model="supportqueue")
    work = Permission.objects.get(content_type=content_type, codename="work_queue")
    for slug, name, description, roles in queues:
        queue, _ = SupportQueue.objects.update_or_create(
            slug=slug, defaults={"name": name, "description": description})
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            GroupObjectPermission.objects.get_or_create(
                group=group, permission=work, content_type=content_type, object_pk=str(queue.pk))


def remove_queues(apps, schema_editor, queues=QUEUES):
    SupportQueue = apps.get_model("support", "SupportQueue")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    rows = SupportQueue.objects.filter(slug__in=[q[0] for q in queues], tickets__isnull=True)
    GroupObjectPermission.objects.filter(
        content_type__app_label="support", object_pk__in=[str(pk) for pk in rows.values_list("pk", flat=True)]
    ).delete()
    rows.delete()


class Migration(migrations.Migration):

    dependencies = [
        ("support", "0001_initial"),
        ("customers", "0002_staff_roles"),
        ("guardian", "0003_remove_groupobjectpermission_guardian_gr_content_ae6aec_idx_and_more"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(create_queues, remove_queues)]
