# The packed engine's whole benchmark grid (issue #24) at one commit, on one GPU, in device-tool
# calls of under 10 minutes: PARTS picks the shapes of this call (lr: the reduced study's linear
# regression, width 128, 42 tokens, Transformer/Mamba/MambaFormer; parity: its sparse parity,
# width 128, 280 tokens, the six architectures; paper: width 256, linear regression, 82 tokens,
# the six). Each shape: the eager peers (tf32, bf16), packs of K = 1, 4, 16, 64 (tf32) and 1, 16
# (bf16), median of REPEATS blocks of STEPS steps. Back: $OUT/grid_<part>.{json,md}; then, here,
#   python3 benchmarks/packed_summary.py <files>/grid_*.json --out benchmarks/results
# makes train_step_packed.{json,md} from this grid alone (one code, one GPU).
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
CODE=${CODE:?set CODE to the commit measured}
PARTS=${PARTS:-lr,parity,paper}
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu --format=csv,noheader
COMMON="--impls eager_peer,project --packs ${PACKS:-1,4,16,64} --precisions tf32,bf16 --warmup ${WARMUP:-5}
        --steps ${STEPS:-10} --repeats ${REPEATS:-3} --code $CODE --out $OUT"
grid() {  # name, timeout (s), train_step.py arguments
  local name=$1 limit=$2; shift 2
  timeout "$limit" python3 benchmarks/train_step.py "$@" $COMMON --name "grid_$name" 2>&1 \
      | grep -E "ms/step|failed|Error|wrote" | tee "$OUT/grid_$name.log"
}
case ,$PARTS, in *,lr,*)
  grid lr ${LR_S:-150} --spec specs/reduced/study.icl --task linear_regression --archs transformer,mamba,mambaformer ;; esac
case ,$PARTS, in *,parity,*)
  grid parity ${PARITY_S:-420} --spec specs/reduced/study.icl --task sparse_parity \
      --archs ${PARITY_ARCHS:-transformer,mamba,s4,s4_mamba,standard_hybrid,mambaformer} ;; esac
case ,$PARTS, in *,paper,*)
  grid paper ${PAPER_S:-540} --spec specs/paper/study.icl --task linear_regression \
      --archs ${PAPER_ARCHS:-transformer,mamba,s4,s4_mamba,standard_hybrid,mambaformer} ;; esac
