# One device-tool call for the selective-scan work of issue #24 (run from the checkout's root
# on the GPU machine, .whl carried): the packed scan benchmark, the train-step rows of the Mamba
# architectures at 280 tokens with a profile, and the GPU kernel tests. STAGES picks the parts
# (scan, train, profile, tests); SEQ_CONFIGS the triton_seq launch shapes timed beside the default.
source benchmarks/device_env.sh
export PYTHONUNBUFFERED=1
STAGES=${STAGES:-scan,train,tests}
SEQ_CONFIGS=${SEQ_CONFIGS:-default}
CODE=${CODE:-uncommitted}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
python3 -c "import torch, triton; print('torch', torch.__version__, 'triton', triton.__version__)"
case ,$STAGES, in *,scan,*)
  timeout ${SCAN_S:-240} python3 benchmarks/selective_scan.py --packed --batches ${BATCHES:-64,1024} --dims 256 \
      --lengths ${LENGTHS:-280} --dtypes ${DTYPES:-fp32,bf16} --seq-configs "$SEQ_CONFIGS" ${ONLY:+--only "$ONLY"} --out $OUT/scan \
      2>&1 | grep -v Warning | tee $OUT/scan.log ;; esac
case ,$STAGES, in *,train,*)
  timeout ${TRAIN_S:-240} python3 benchmarks/train_step.py --spec specs/reduced/study.icl --task sparse_parity \
      --archs ${ARCHS:-mamba,mambaformer} --impls project --packs ${PACKS:-1,4,16} --precisions ${PRECISIONS:-tf32,bf16} \
      --name train_step_packed --code "$CODE" --out $OUT/train 2>&1 | tail -30 | tee $OUT/train.log ;; esac
case ,$STAGES, in *,profile,*)
  timeout ${PROFILE_S:-150} python3 benchmarks/train_step.py --spec specs/reduced/study.icl --task sparse_parity \
      --archs mamba --impls project --packs 16 --precisions tf32 --profile $OUT/profile.txt \
      --name profile_run --out $OUT/prof 2>&1 | tail -5 ;; esac
case ,$STAGES, in *,tests,*)
  timeout ${TESTS_S:-200} python3 -m pytest -q -x -p no:cacheprovider tests/gpu/test_kernels_gpu.py ${TEST_K:+-k "$TEST_K"} \
      2>&1 | tail -15 | tee $OUT/tests.log ;; esac
