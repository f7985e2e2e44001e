from __future__ import annotations

from typing import Any

from django.apps import AppConfig, apps
from django.db.models.signals import post_migrate


def _roles_sync_after_migrate(sender: AppConfig, using: str = "default", **kwargs: Any) -> None:
    # Permissions are created by auth's own post_migrate handler, app by app. Run once,
    # for the last app, when every app's permissions exist; this also re-creates the
    # groups after a test flush empties the tables.
    with_models = [config for config in apps.get_app_configs() if config.models_module is not None]
    if not with_models or sender.label != with_models[-1].label:
        return
    from accounts.roles import roles_sync

    roles_sync()


class AccountsConfig(AppConfig):
    name = "accounts"
    verbose_name = "Players and staff"

    def ready(self) -> None:
        post_migrate.connect(_roles_sync_after_migrate, dispatch_uid="accounts.roles_sync")
