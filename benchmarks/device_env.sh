# Source this on the device tool's GPU machine (Python 3.12 with torch, triton, transformers),
# from the checkout's root, with the git-ignored .whl/ carried: it holds lark's wheel (pip
# download lark --no-deps -d .whl) and those of ../shared/wheels (mamba_ssm, einops).
# Installs them into /tmp/site and makes the checkout's folders the icl package's subpackages
# (as pyproject's package-dir does) through a sitecustomize on PYTHONPATH.
pip install --no-index --no-deps --quiet --target /tmp/site .whl/*.whl
mkdir -p /tmp/icl_shim
printf 'import sys\nsys.path.insert(0, "%s")\nimport icl\nicl.__path__.append("%s")\n' "$PWD" "$PWD" \
    > /tmp/icl_shim/sitecustomize.py
export PYTHONPATH=/tmp/icl_shim:/tmp/site${PYTHONPATH:+:$PYTHONPATH}
