"""Settings: the TOML file, ``BM_AGENT_*`` environment variables and their defaults.

``settings`` loads and validates; ``keys`` is the table of keys behind it. Callers import
from here.
"""

from agent.config.settings import (
    CONFIG_ENV,
    DEFAULT_CONFIG_PATH,
    ENV_PREFIX,
    KEYS,
    ActionsSettings,
    ApiSettings,
    AuthSettings,
    CheckSettings,
    HookSettings,
    LogSettings,
    ManagerKey,
    NodeSettings,
    PowerPathSettings,
    RetentionSettings,
    SecretsSettings,
    Settings,
    StoreSettings,
    UiSettings,
    env_name,
    load_settings,
    read_node_dat,
    render_default_config,
    resolve_config_path,
)

__all__ = [
    "CONFIG_ENV",
    "DEFAULT_CONFIG_PATH",
    "ENV_PREFIX",
    "KEYS",
    "ActionsSettings",
    "ApiSettings",
    "AuthSettings",
    "CheckSettings",
    "HookSettings",
    "LogSettings",
    "ManagerKey",
    "NodeSettings",
    "PowerPathSettings",
    "RetentionSettings",
    "SecretsSettings",
    "Settings",
    "StoreSettings",
    "UiSettings",
    "env_name",
    "load_settings",
    "read_node_dat",
    "render_default_config",
    "resolve_config_path",
]
