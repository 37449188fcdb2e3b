from django.apps import AppConfig


class ConsoleConfig(AppConfig):
    name = "console"
    verbose_name = "Console"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from config import problems
        from console import alerts

        problems.problem_reported.connect(
            alerts.on_problem_reported, dispatch_uid="console_problem_reported"
        )
        problems.problem_resolved.connect(
            alerts.on_problem_resolved, dispatch_uid="console_problem_resolved"
        )
