"""Which W&B mode a run really gets, decided without ever prompting for a login."""

from __future__ import annotations

import os

from mixer_sweeps.tracking._guard import _state, _warn_once


def has_wandb_credentials() -> bool:
    """Whether W&B could log in without asking: an API key in the environment or settings, a
    netrc entry for the W&B host, or an identity token file. Never prompts."""
    try:
        from wandb.sdk import wandb_setup
        from wandb.sdk.lib import wbauth

        auth = wbauth.authenticate_session(
            host=wandb_setup.singleton().settings.base_url,
            source="mixer_sweeps",
            prompt=False,
            update_session=False,
        )
    except Exception as exc:  # e.g. a malformed WANDB_API_KEY
        _warn_once("credentials", f"W&B credentials unusable ({exc}); treating as logged out.")
        return False
    return auth is not None


def resolve_mode(mode: str) -> str:
    """The mode a run really gets: ``online``, ``offline`` or ``disabled``.

    ``auto`` is online only with credentials, and yields to ``WANDB_MODE=offline|disabled``;
    ``online`` without credentials is offline (with a warning) rather than a login prompt. After
    an online start failed in this process, runs are offline; after W&B broke, disabled.
    """
    if mode == "auto":
        env_mode = os.environ.get("WANDB_MODE", "").lower()
        if env_mode in ("offline", "dryrun", "disabled"):
            mode = "disabled" if env_mode == "disabled" else "offline"
    if mode == "disabled" or _state.broken:
        return "disabled"
    if mode == "offline" or _state.online_failed:
        return "offline"
    if has_wandb_credentials():
        return "online"
    if mode == "online":
        _warn_once(
            "no-credentials",
            "tracking.wandb.mode is online but no W&B API key was found (WANDB_API_KEY or"
            " `wandb login`); writing offline runs instead, upload them with `sweeps sync`.",
        )
    return "offline"


def wandb_host() -> str:
    """The W&B server that online runs and ``wandb sync`` talk to (``WANDB_BASE_URL``, else
    wandb's settings, else its default)."""
    try:
        from wandb.sdk import wandb_setup

        return str(wandb_setup.singleton().settings.base_url)
    except Exception:  # a broken wandb install says so itself when it is used
        return os.environ.get("WANDB_BASE_URL", "the W&B server")
