"""Create the owner, finance_admin and support_agent groups from customers/roles.py."""

from django.db import migrations


def create_roles(apps, schema_editor):
    from customers.roles import sync_role_groups

    sync_role_groups(apps, strict=False)


def remove_roles(apps, schema_editor):
    from customers.roles import ROLES

    apps.get_model("auth", "Group").objects.filter(name__in=ROLES).delete()


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("customers", "0001_initial"),
        ("audit", "0002_append_only_trigger"),
        ("axes", "0010_accessattemptexpiration"),
        ("django_rq", "0003_alter_dashboard_permission_names"),
        ("djstripe", "0003_2_11"),
    ]

    operations = [migrations.RunPython(create_roles, remove_roles)]
