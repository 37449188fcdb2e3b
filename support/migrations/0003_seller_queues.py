"""The marketplace sellers' queues (support/sellers.py): seller disputes for finance
admins and owners (chargebacks are money decisions), sellers' problems for every role."""

from django.db import migrations

QUEUES = [
    ("seller_disputes", "Seller disputes",
     "Chargebacks on marketplace orders: order, buyer and seller; finance admins and owners",
     ["owner", "finance_admin"]),
    ("sellers", "Sellers",
     "Marketplace sellers' problems: failed payouts of their connected accounts",
     ["owner", "finance_admin", "support_agent"]),
]


def create_queues(apps, schema_editor):
    SupportQueue = apps.get_model("support", "SupportQueue")
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    ContentType = apps.get_model("contenttypes", "ContentType")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    content_type = ContentType.objects.get(app_label="support", model="supportqueue")
    work = Permission.objects.get(content_type=content_type, codename="work_queue")
    for slug, name, description, roles in QUEUES:
        queue, _ = SupportQueue.objects.update_or_create(
            slug=slug, defaults={"name": name, "description": description})
        for role in roles:
            group, _ = Group.objects.get_or_create(name=role)
            GroupObjectPermission.objects.get_or_create(
                group=group, permission=work, content_type=content_type, object_pk=str(queue.pk))


def remove_queues(apps, schema_editor):
    SupportQueue = apps.get_model("support", "SupportQueue")
    GroupObjectPermission = apps.get_model("guardian", "GroupObjectPermission")
    queues = SupportQueue.objects.filter(slug__in=[q[0] for q in QUEUES], tickets__isnull=True)
    GroupObjectPermission.objects.filter(
        content_type__app_label="support",
        object_pk__in=[str(pk) for pk in queues.values_list("pk", flat=True)],
    ).delete()
    queues.delete()


class Migration(migrations.Migration):

    dependencies = [("support", "0002_support_queues")]

    operations = [migrations.RunPython(create_queues, remove_queues)]
