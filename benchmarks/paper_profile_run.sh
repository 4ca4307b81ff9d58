# One device-tool call (issue #24): where a paper-size training step spends its GPU time. The
# study's six at width 256 on one task (TASK, default sparse_parity: 280 tokens), K = 1: the
# eager step under torch.profiler (kernel table, tf32), its CUDA-graph step in tf32 and bf16.
# Back: $OUT/train_step_paper_profile.{json,md,txt}. The .whl folder carried.
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem --format=csv,noheader | tee $OUT/device.txt
python3 benchmarks/train_step.py --task ${TASK:-sparse_parity} --impls project_eager,project --packs 1 \
    --precisions tf32,bf16 --warmup 5 --steps 10 --repeats 3 --archs ${ARCHS:-transformer,mamba,s4,s4_mamba,standard_hybrid,mambaformer} \
    --profile $OUT/train_step_paper_profile.txt --out $OUT --name train_step_paper_profile \
    --code "${CODE:-not given}"
