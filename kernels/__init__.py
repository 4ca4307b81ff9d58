"""Selective-scan kernels for the Mamba blocks.

`selective_scan` dispatches (Triton on CUDA, the pure-PyTorch reference elsewhere; see
dispatch.py for the backends and how to force one); `selective_scan_ref` is the reference itself.
`resolve_backend(device_type, backend)` names the backend a call runs: the blocks record it
(blocks/mamba.py `backend_ran`), so each run's status names its own model's backend.
"""
from icl.kernels.dispatch import BACKENDS, resolve_backend
from icl.kernels.selective_scan_ref import selective_scan_ref


def selective_scan(u, delta, A, B, C, D=None, z=None, delta_bias=None, delta_softplus=False,
                   return_last_state=False, backend=None):
    """Selective scan with mamba_ssm's interface and shapes: u, delta, z (batch, dim, L);
    A (dim, N); B, C (batch, N, L); D, delta_bias (dim,); or grouped parameters for K models
    packed into one batch: A (K, dim, N), D and delta_bias (K, dim), model k serving the batch
    rows [k R, (k + 1) R), R = batch / K. Returns out (batch, dim, L) in u's dtype [and the fp32
    final state (batch, dim, N)]. `backend`: auto | triton | triton_seq | reference (None:
    $ICL_SCAN_BACKEND, else auto)."""
    name = resolve_backend(u.device.type, backend)
    if name == "triton":
        # Imported at first use: Triton reads TRITON_INTERPRET when the kernels are defined.
        from icl.kernels import selective_scan_triton as triton_scan
        return triton_scan.selective_scan_triton(u, delta, A, B, C, D, z, delta_bias,
                                                 delta_softplus, return_last_state)
    if name == "triton_seq":
        from icl.kernels import selective_scan_seq as seq_scan
        return seq_scan.selective_scan_seq(u, delta, A, B, C, D, z, delta_bias, delta_softplus,
                                           return_last_state)
    return selective_scan_ref(u, delta, A, B, C, D, z, delta_bias, delta_softplus, return_last_state)


__all__ = ["selective_scan", "selective_scan_ref", "resolve_backend", "BACKENDS"]
