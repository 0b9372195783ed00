"""Triton kernel runner: grades generated Triton code against PyTorch references (see README.md)."""
