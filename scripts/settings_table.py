"""Print the configuration table for README.md from the settings model (the one source of truth)."""

from __future__ import annotations

from service.settings import Settings


def main() -> None:
    print("| Variable | Default | Meaning |")
    print("| --- | --- | --- |")
    for name, field in Settings.model_fields.items():
        default = field.default_factory() if field.default_factory is not None else field.default  # type: ignore[call-arg]
        shown = "" if default in ("", [], None) else str(default)
        print(f"| `WGAN_{name.upper()}` | {f'`{shown}`' if shown else '(see meaning)'} | {field.description or ''} |")


if __name__ == "__main__":
    main()
