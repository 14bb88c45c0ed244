"""The website chat widget as a channel: visitors write through web/widget, replies reach them
through the realtime hub."""

from channels.widget.adapter import WidgetAdapter

__all__ = ["WidgetAdapter"]
