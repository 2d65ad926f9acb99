"""Where the client finds the server and its token: arguments, else ``FITLENS_URL`` and
``FITLENS_TOKEN``, else the file ``fitlens login`` wrote (readable by its owner only); and the
team new runs go to: an argument, else ``FITLENS_TEAM``."""

from __future__ import annotations

import json
import os
from pathlib import Path

from pydantic_settings import BaseSettings, SettingsConfigDict


class ClientSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="FITLENS_", extra="ignore")

    url: str | None = None
    token: str | None = None
    # The team new runs and studies go to when your token is in several (FITLENS_TEAM).
    team: str | None = None
    # Where ``fitlens login`` keeps the URL and token (mode 0600).
    config_file: Path | None = None


def config_path(settings: ClientSettings | None = None) -> Path:
    settings = settings or ClientSettings()
    if settings.config_file is not None:
        return settings.config_file
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "fitlens" / "config.json"


def load_saved(path: Path) -> dict[str, str]:
    try:
        return dict(json.loads(path.read_text()))
    except (OSError, ValueError):
        return {}


def save(path: Path, url: str, token: str) -> None:
    """Written with 0600 from the first byte (never readable by others, even briefly)."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump({"url": url, "token": token}, f)
    os.chmod(path, 0o600)


def resolve(url: str | None, token: str | None) -> tuple[str, str]:
    settings = ClientSettings()
    saved = load_saved(config_path(settings))
    url = url or settings.url or saved.get("url")
    token = token or settings.token or saved.get("token")
    if not url or not token:
        raise ValueError(
            "no server or token: pass Client(url, token), set FITLENS_URL and FITLENS_TOKEN, "
            "or run `fitlens login URL`"
        )
    return url.rstrip("/"), token
