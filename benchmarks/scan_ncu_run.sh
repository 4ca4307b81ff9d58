# One device-tool call: Nsight Compute's counters of the sequential scan's forward and backward
# kernels (benchmarks/scan_ncu.py: 1024 rows, D 256, L 280, N 16) for where their time goes:
# warp stall reasons, issue slots, occupancy, registers, memory throughput. CONFIG: a SeqConfig
# as comma-separated fields (default: the kernel's own). Back: $OUT/ncu_scan.txt.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
python3 benchmarks/scan_ncu.py --repeats 1 ${CONFIG:+--config $CONFIG} >/dev/null  # Triton's JIT, outside ncu
timeout ${NCU_S:-240} ncu --clock-control none --kernel-name regex:_seq_ --launch-skip 2 --launch-count 2 \
    --section SpeedOfLight --section LaunchStats --section Occupancy --section SchedulerStats \
    --section WarpStateStats --section ComputeWorkloadAnalysis --section InstructionStats \
    --section MemoryWorkloadAnalysis \
    python3 benchmarks/scan_ncu.py --repeats 2 ${CONFIG:+--config $CONFIG} > $OUT/ncu_scan.txt 2>&1
grep -E "_seq_|Duration|Registers Per|Achieved Occupancy|Theoretical Occupancy|Issued Warp|No Eligible|Warp Cycles Per Issued|Compute \(SM\) Throughput|Memory Throughput|Stall|Executed Ipc" $OUT/ncu_scan.txt | head -60
