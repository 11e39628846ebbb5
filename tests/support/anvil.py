"""Placeholder: the anvil fixtures are being written (see tests/integration/test_evm_*)."""
