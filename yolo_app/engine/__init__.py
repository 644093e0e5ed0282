"""The GUI-free engine: sources, capture, inference, rendering and sinks, wired by a Pipeline."""
