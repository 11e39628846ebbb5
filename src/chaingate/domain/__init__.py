"""Pure payment rules. Imports nothing but the standard library and itself."""
