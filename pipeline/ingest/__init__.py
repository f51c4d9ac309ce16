"""Getting samples in: readers of each input format, structural checks, and the raw landing store."""
