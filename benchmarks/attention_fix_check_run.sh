# One device-tool call (.whl carried, about 8 minutes) that checks the fp16 attention's scaled
# backward (blocks/attention.py) where it matters, in order:
#   1. the quick token MQAR pipeline alone, seeds 0-2 (benchmarks/quick_mqar_lone_run.sh);
#   2. the plain eager loop alone on the same card, the time to beat;
#   3. the attention's GPU tests;
#   4. eager-loop variants at once (benchmarks/mqar_bisect_run.sh): our model from the plain
#      model's weights with the scaled backward and without it (as before the fix), and ours
#      from its own init, seeds 0-3; beside them the flash-linear-attention GLA and R7 GPU tests
#      (they printed nothing in 150 s once; here they get 200 s and dump their stacks at 180 s).
# Everything comes back in $OUT (at most 8 files: two archives and three logs).
source benchmarks/device_env.sh >/dev/null 2>&1
export PYTHONUNBUFFERED=1
RUN_S=${RUN_S:-50} SETTINGS="1e-3:0.1 1e-3:0.1@1 1e-3:0.1@2" timeout 200 bash benchmarks/quick_mqar_lone_run.sh
cat /tmp/quick_mqar/walls.txt
timeout 45 python3 benchmarks/plain_mqar.py $OUT/plain_alone.json --lr 1e-3 --weight-decay 0.1 --seconds 30 | tail -1
timeout 60 python3 -m pytest -q -p no:cacheprovider --tb=short tests/gpu/test_attention_gpu.py > $OUT/attention_tests.log 2>&1
tail -1 $OUT/attention_tests.log
for sel in GLA R7; do
  ( timeout 200 python3 -m pytest -v -x -p no:cacheprovider -o faulthandler_timeout=180 --tb=short \
      tests/gpu/test_mixers_gpu.py -k "$sel" > $OUT/mixers_$sel.log 2>&1 & )
done
STEPS_CAP=6000 SECONDS_CAP=170 VARIANTS="ours_fromplain --model ours --weights-from-plain
ours_fromplain_unscaled --model ours --weights-from-plain --attention fp16-unscaled
ours_fromplain_s1 --model ours --weights-from-plain --seed 1
ours --model ours
ours_s1 --model ours --seed 1
ours_s2 --model ours --seed 2
ours_s3 --model ours --seed 3
plain_s3 --model plain --seed 3" timeout 220 bash benchmarks/mqar_bisect_run.sh
sleep 5; tail -n 3 $OUT/mixers_*.log
