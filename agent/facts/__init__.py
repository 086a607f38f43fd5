"""The fact vocabulary as data: one TOML file per area, merged (see core.toml)."""
