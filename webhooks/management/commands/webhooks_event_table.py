"""Print every declared event type as a Markdown table (name, category, description).

Paste it into your documentation, or have a test compare it with the documentation, so
the list customers read is the list the code raises.
"""

from django.core.management.base import BaseCommand

from webhooks.registry import registry


def _cell(text: str) -> str:
    return " ".join(str(text).split()).replace("|", "\\|")


def event_table() -> str:
    specs = sorted(registry.event_types.values(), key=lambda s: (s.category.lower(), s.name))
    lines = ["| event | category | description |", "|---|---|---|"]
    lines += [
        f"| `{spec.name}` | {_cell(spec.category)} | {_cell(spec.description)} |" for spec in specs
    ]
    return "\n".join(lines) + "\n"


class Command(BaseCommand):
    help = "Print all declared event types as a Markdown table (name, category, description)."

    def handle(self, *args, **options):
        self.stdout.write(event_table(), ending="")
