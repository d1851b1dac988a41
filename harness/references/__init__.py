"""Reference images: the blessed store and its verification, and where a run takes its references from."""
