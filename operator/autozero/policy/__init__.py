"""The ScalingPolicy resource: manifest dict -> typed, validated model; errors carry field paths."""
