from __future__ import annotations

from functools import cached_property

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.core.validators import RegexValidator
from django.db import models
from django.db.models import Q
from django.db.models.functions import Lower
from django.utils import timezone

handle_validator = RegexValidator(
    r"^[a-z0-9_]{3,30}$",
    "A handle is 3 to 30 characters: lowercase letters, digits and underscores.",
)


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str) -> User:
        # Handles are stored lowercased; emails compare regardless of case.
        lookup = "email__iexact" if "@" in username else "handle"
        return self.get(**{lookup: username.lower() if lookup == "handle" else username})

    def create_user(self, handle: str, email: str, password: str | None = None, **fields) -> User:
        user = self.model(handle=handle.lower(), email=self.normalize_email(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(
        self, handle: str, email: str, password: str | None = None, **fields
    ) -> User:
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(handle, email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A player, moderator or admin. Roles are Django groups (see accounts.roles)."""

    handle = models.CharField(
        max_length=30,
        # Stored lowercased, so this equals the case-insensitive constraint below; it
        # is here because Django's auth expects USERNAME_FIELD to be unique.
        unique=True,
        validators=[handle_validator],
        help_text="The public user tag: 3-30 of a-z, 0-9 and _.",
    )
    email = models.EmailField(max_length=254)
    display_name = models.CharField(max_length=60, blank=True)
    public_profile = models.BooleanField(
        default=False, help_text="Show this player's profile page and performance to everyone."
    )
    # What a public profile shows besides weights and figures: both off by default.
    profile_show_shares = models.BooleanField(
        default=False,
        db_default=False,
        help_text="Show share counts on the public profile, not only weights.",
    )
    profile_show_trades = models.BooleanField(
        default=False, db_default=False, help_text="Show recent trades on the public profile."
    )
    time_zone = models.CharField(max_length=64, default="UTC")
    is_staff = models.BooleanField(default=False)
    is_active = models.BooleanField(default=True)
    date_joined = models.DateTimeField(default=timezone.now)
    deleted_at = models.DateTimeField(null=True, blank=True, db_index=True)
    suspended_at = models.DateTimeField(null=True, blank=True, db_index=True)
    suspension_reason = models.CharField(max_length=280, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "handle"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS = ["email"]

    class Meta:
        constraints = [
            models.UniqueConstraint(Lower("handle"), name="user_handle_ci_unique"),
            models.UniqueConstraint(Lower("email"), name="user_email_ci_unique"),
        ]
        indexes = [
            # The admin's player list: newest first, id as the tie-breaker (one index
            # scan, read backwards, for every page of 100,000 players).
            models.Index(fields=["date_joined", "id"], name="user_joined_idx"),
            # The admin's "any staff role" filter: a handful of rows among all players.
            models.Index(fields=["date_joined"], name="user_staff_idx", condition=Q(is_staff=True)),
            # The admin's search by the start of a handle (LIKE 'abc%' needs pattern ops).
            models.Index(
                fields=["handle"], name="user_handle_prefix_idx", opclasses=["varchar_pattern_ops"]
            ),
        ]
        # Named permissions that belong to accounts; accounts.roles gives them to roles.
        permissions = [
            ("suspend_user", "Can suspend and reactivate players"),
            ("change_role", "Can change a player's role"),
        ]

    def __str__(self) -> str:
        return f"@{self.handle}"

    @property
    def name(self) -> str:
        return self.display_name or self.handle

    @property
    def initials(self) -> str:
        parts = (self.display_name or self.handle).replace("_", " ").split()
        letters = "".join(part[0] for part in parts[:2]) or self.handle[:2]
        return letters.upper()

    @property
    def is_deleted(self) -> bool:
        return self.deleted_at is not None

    @property
    def is_suspended(self) -> bool:
        return self.suspended_at is not None

    @property
    def can_log_in(self) -> bool:
        return self.is_active and not self.is_deleted and not self.is_suspended


class UserSession(models.Model):
    """One logged-in browser or device of a player, shown on the settings page.

    It hangs off Django's own session row: deleting the session (log out, revoke,
    expiry clean-up, key rotation) deletes this row with it, so the list never shows a
    session that no longer works. Pages refer to it by `id`, never by session key.
    """

    user = models.ForeignKey(User, on_delete=models.CASCADE, related_name="sessions")
    session = models.OneToOneField(
        "sessions.Session", on_delete=models.CASCADE, related_name="tracking"
    )
    user_agent = models.CharField(max_length=512, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)
    last_seen_at = models.DateTimeField(default=timezone.now)

    class Meta:
        indexes = [models.Index(fields=["user", "-last_seen_at"])]

    def __str__(self) -> str:
        return f"{self.user} on {self.device}"

    @cached_property
    def _parsed_agent(self):
        from user_agents import parse

        return parse(self.user_agent or "")

    @property
    def device(self) -> str:
        """A person-readable device: "Chrome 120 on Mac OS X 10.15.7 (desktop)"."""
        agent = self._parsed_agent
        if not self.user_agent:
            return "Unknown device"
        major = agent.browser.version[0] if agent.browser.version else ""
        browser = f"{agent.browser.family} {major}".strip()
        system = f"{agent.os.family} {agent.os.version_string}".strip()
        if agent.is_mobile:
            kind = "phone"
        elif agent.is_tablet:
            kind = "tablet"
        elif agent.is_bot:
            kind = "bot"
        else:
            kind = "desktop"
        return f"{browser} on {system} ({kind})"


class AuditOutcome(models.TextChoices):
    DONE = "done", "Done"
    DENIED = "denied", "Denied (403)"


class AuditEntry(models.Model):
    """One staff action: who did what to which target, when and why (accounts.audit).

    Append-only: written by `audit_record` in the same transaction as the action, never
    edited, never deleted from the admin. The actor's handle and the target's label are
    copied, so an entry still reads right after the player or the stock is renamed,
    deleted or delisted.
    """

    actor = models.ForeignKey(
        User,
        on_delete=models.SET_NULL,
        null=True,
        blank=True,
        related_name="audit_entries",
        db_index=False,  # audit_actor_idx starts with the actor
    )
    actor_handle = models.CharField(max_length=30, blank=True)
    action = models.CharField(max_length=60)
    outcome = models.CharField(
        max_length=6, choices=AuditOutcome.choices, default=AuditOutcome.DONE
    )
    # "app_label.model" and primary key of what was acted on ("" for a site-wide action).
    target_type = models.CharField(max_length=60, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_label = models.CharField(max_length=200, blank=True)
    reason = models.TextField(blank=True)
    # Small facts about the action: the amount adjusted, the role before and after, ...
    details = models.JSONField(default=dict, blank=True)
    ip = models.GenericIPAddressField(null=True, blank=True)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "audit entry"
        verbose_name_plural = "audit log"
        indexes = [
            # The admin list: newest first, optionally by action, actor or target.
            models.Index(fields=["-created_at"], name="audit_recent_idx"),
            models.Index(fields=["action", "-created_at"], name="audit_action_idx"),
            models.Index(fields=["actor", "-created_at"], name="audit_actor_idx"),
            models.Index(fields=["target_type", "target_id"], name="audit_target_idx"),
            models.Index(
                fields=["-created_at"],
                name="audit_denied_idx",
                condition=models.Q(outcome="denied"),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.actor_handle or 'system'} {self.action} {self.target_label}".strip()
