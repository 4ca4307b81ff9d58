"""Selective-scan kernels for the Mamba blocks.

`selective_scan` dispatches to a backend (Triton on CUDA, the pure-PyTorch reference
elsewhere); `selective_scan_ref` is the reference itself.
"""
from icl.kernels.selective_scan_ref import selective_scan_ref


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend=None):
    """Selective scan with mamba_ssm's interface; `backend` is auto|triton|reference (None = auto).
    Until the Triton kernel lands this always runs the reference."""
    return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


__all__ = ["selective_scan", "selective_scan_ref"]
